/* sweep.h - memory that stays bounded. An object nobody uses (no open file,
 * no waiter, no poll, download or latest request under way, not a live
 * query's latest run) is idle. Idle objects worth nothing (an id the API does
 * not know, a query never run nor read) leave memory once the kernel has
 * forgotten their inodes. The others are kept, up to SWEEP_KEEP_OBJECTS in
 * all, and beyond that the least recently used go: freed when the kernel
 * holds none of their inodes, else named for the kernel to forget
 * (engine_config.forget_name) and freed by a later pass; worthless names
 * the kernel holds are handed back after 10 s unused, whatever the count.
 * They come back from the index when looked up again.
 */
#ifndef EXECFS_SWEEP_H
#define EXECFS_SWEEP_H

/* Objects kept in memory before the idle ones go. */
#define SWEEP_KEEP_OBJECTS 4096

/* Starts the pass that runs every engine_config.sweep_ms on the engine
 * thread. */
void sweep_start(void);

/* One pass now (tests; engine thread or no engine running). */
void sweep_now(void);

/* Waits for the kernel's invalidations handed out so far (at shutdown,
 * once parked requests are answered; tests). */
void sweep_wait_forgets(void);

#endif
