/* download.h - one result's download: its pages, in order, decoded into the
 * cache file as they arrive, the next page asked for while the current one
 * streams, then the commit. One download per result, whatever the readers
 * (and whatever the other daemons on the cache directory: share.c).
 */
#ifndef EXECFS_DOWNLOAD_H
#define EXECFS_DOWNLOAD_H

#include "core.h"

/* On the engine thread, once this daemon holds the result's claim
 * (lock_fd, -1: none; share.c decides): the cache file, the decoder, the
 * first page. r is RESULT_STREAMING; it ends COMPLETE or FAILED. */
void download_run(struct result *r, int lock_fd);

/* r's bytes are all in the cache for good (fd: its descriptor from now
 * on, -1: the one it has): COMPLETE, the cap checked, waiters woken. by
 * says who downloaded it, for the log. r may leave memory once this returns. */
void download_completed(struct result *r, int fd, off_t size, const char *by);

/* Frees what a download under way holds (at shutdown, nothing running). */
void download_discard(struct result *r);

#endif
