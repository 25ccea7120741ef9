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

/* Queues fn(data). Thread-safe. Without a running thread (it failed to start,
 * or has stopped) the job runs at once, in the caller: the caller must then
 * hold no lock the job takes. */
void worker_submit(void (*fn)(void *data), void *data);

#endif
