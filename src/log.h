/* log.h - one line per event, to stderr in the foreground, to syslog otherwise.
 *
 * Callers never pass the API key: requests carry it in a header that is never
 * logged, and URLs never hold it.
 */
#ifndef EXECFS_LOG_H
#define EXECFS_LOG_H

/* Sends lines to syslog from now on (after daemonising). */
void log_use_syslog(void);

/* Turns debug lines on (-d). */
void log_set_debug(int on);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
