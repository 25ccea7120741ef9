/* log.c - stderr or syslog, one line per call. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

static int use_syslog;
static int debug_on;

void log_use_syslog(void)
{
	openlog("execfs", LOG_PID, LOG_DAEMON);
	use_syslog = 1;
}

void log_set_debug(int on)
{
	debug_on = on;
}

static void log_line(int priority, const char *word, const char *fmt, va_list ap)
{
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (use_syslog)
		syslog(priority, "%s", line);
	else
		fprintf(stderr, "execfs: %s: %s\n", word, line);
}

void log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(LOG_ERR, "error", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line(LOG_INFO, "info", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!debug_on)
		return;
	va_start(ap, fmt);
	log_line(LOG_DEBUG, "debug", fmt, ap);
	va_end(ap);
}
