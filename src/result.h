/* result.h - a result's state and its bytes on local disk: the one setter
 * of its state, its descriptor, and the count of cached bytes.
 *
 * download.c fills a result, reader.c serves it, evict.c keeps the cache
 * under its cap; all three change it through here.
 */
#ifndef EXECFS_RESULT_H
#define EXECFS_RESULT_H

#include "core.h"

/* Sets up r for ex; cached_size >= 0 when the cache holds it complete. */
void result_init_locked(struct result *r, struct execution *ex, enum result_format format,
			off_t cached_size);

/* The one place a result's state changes; logs the change at debug level. */
void result_set_state_locked(struct result *r, enum result_state state);

/* Every byte is on local disk (a commit may still be under way): its size
 * is final. */
int result_whole(const struct result *r);

/* Whether a download is under way (streaming or committing). */
int result_busy(const struct result *r);

/* Replaces r's descriptor (fd -1: none). Returns the old one for the
 * caller to close once the lock is dropped (closing the last descriptor of
 * a removed file frees its blocks: disk work), or -1: none, or a reply still
 * reads it and the last unpin hands it over. */
int result_set_fd_locked(struct result *r, int fd);

/* A reply that read r's descriptor outside the lock is done; the
 * descriptors retired meanwhile, for the caller to close after unlocking, go
 * into closing (room for RESULT_RETIRED_MAX). Returns how many. */
int result_unpin_locked(struct result *r, int *closing);

/* The download of r ended with all its bytes committed to the cache.
 * Returns a descriptor to close after unlocking, or -1. */
int result_committed_locked(struct result *r);

/* A complete result is no longer in the cache (evicted, or removed behind
 * our back): its bytes are no longer counted. */
void result_forget_locked(struct result *r);

/* Bytes of complete results in the cache directory: as the last eviction
 * pass counted them, plus this daemon's commits since. */
unsigned long long results_cached_bytes_locked(void);
void results_set_cached_bytes_locked(unsigned long long bytes);

/* Frees what r holds (shutdown). */
void result_free(struct result *r);

#endif
