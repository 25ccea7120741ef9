/* result.h - a result as its readers see it: its state, its bytes on local
 * disk, its opens and parked reads, and the cap on the cache (eviction).
 *
 * download.c fills a result; this file serves it.
 */
#ifndef EXECFS_RESULT_H
#define EXECFS_RESULT_H

#include "core.h"

struct waiter;

/* Sets up r for ex; cached_size >= 0 when the cache holds it complete
 * (mtime: when it was stored). */
void result_init_locked(struct result *r, struct execution *ex, enum result_format format,
			off_t cached_size, time_t mtime);

/* The one place a result's state changes; logs the change at debug level. */
void result_set_state_locked(struct result *r, enum result_state state);

/* The name of a state, for log lines and tests. */
const char *result_state_name(enum result_state state);

/* Every byte is on local disk (a commit may still be under way): its size
 * is final. */
int result_whole(const struct result *r);

/* Whether a download is under way (streaming or committing). */
int result_busy(const struct result *r);

/* An open file h starts reading r: counted, and a failed download forgotten
 * so that this open tries again. */
void result_bind_locked(struct handle *h, struct result *r);

/* Opens the cache file of h's result if it is complete and not open yet.
 * Lock not held (it reads the disk). */
void result_open_file(struct handle *h);

/* Open flags for executions/<eid>/results.*: direct I/O and size 0 until
 * the result is whole, then the page cache, kept across opens. */
void result_open_flags_locked(struct handle *h, struct fuse_file_info *fi);

/* A read of h at off: answered from disk, or parked until the bytes come,
 * the run ends or fails. Returns ENGINE_PARKED (the request is taken). */
int result_read(fuse_req_t req, struct handle *h, size_t size, off_t off);

/* An open of r ends. */
void result_release_locked(struct result *r);

/* Replaces r's descriptor (-1: closes it), deferring the close while a
 * reply still reads the old one. */
void result_set_fd_locked(struct result *r, int fd);

/* The download of r ended with all its bytes committed to the cache. */
void result_committed_locked(struct result *r);

/* Keeps complete results under cache_size: the least recently opened go
 * first; one that is open or being downloaded stays. The files are removed
 * by the worker thread. */
void results_trim_locked(void);

/* Bytes of complete results in the cache. */
unsigned long long results_cached_bytes_locked(void);

/* Frees what r holds (shutdown). */
void result_free(struct result *r);

#endif
