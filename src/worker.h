/* worker.h - one background thread for slow disk work (fsync, rename), so
 * that neither the HTTP engine thread nor a lock holder waits for the disk.
 *
 * Jobs run one at a time, in the order submitted.
 */
#ifndef EXECFS_WORKER_H
#define EXECFS_WORKER_H

/* Starts the thread. Returns 0 or -errno. */
int worker_start(void);

/* Runs every job still queued, then stops the thread. */
void worker_stop(void);

/* Queues fn(data). Thread-safe, and safe under any lock: the job never runs
 * in the caller. Returns 0, or -errno when it cannot be queued (no thread
 * running, stopping, out of memory): the caller then decides, knowing which
 * locks it holds. */
int worker_submit(void (*fn)(void *data), void *data);

#endif
