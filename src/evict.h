/* evict.h - the cap on the cache (cache_size): when complete results pass
 * it, the least recently opened that nobody holds (not open, not being
 * downloaded) are evicted. Their files are removed by the worker thread, in
 * line with the commits, so a later download of the same result is never
 * removed by mistake.
 */
#ifndef EXECFS_EVICT_H
#define EXECFS_EVICT_H

/* Queues an eviction pass when the cached bytes pass the cap. */
void evict_soon_locked(void);

/* Runs a pass now, in the caller (lock not held): at start, so that a
 * smaller cache_size holds before the mount answers anything. */
void evict_now(void);

#endif
