/* evict.h - the cap on the cache (cache_size), one policy for every daemon
 * on the directory: when the complete results in it pass the cap, the least
 * recently opened by any daemon (their atime, set at each open) that this
 * daemon does not hold (open, or being downloaded) are evicted. Their files
 * are removed by the worker thread, in line with the commits, and only if
 * not opened since the pass looked.
 */
#ifndef EXECFS_EVICT_H
#define EXECFS_EVICT_H

/* Queues an eviction pass when the cached bytes (as last counted, plus this
 * daemon's commits since) pass the cap. */
void evict_soon_locked(void);

/* Queues a pass after a commit, whatever the count: it counts the
 * directory again, with the other daemons' results. */
void evict_after_commit_locked(void);

/* Runs a pass now, in the caller (lock not held): at start, so that a
 * smaller cache_size holds before the mount answers anything. */
void evict_now(void);

#endif
