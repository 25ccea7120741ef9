/* sweep.h - memory that stays bounded: objects nobody uses (no open file, no
 * waiter, no poll, download or latest request under way, not a live query's
 * latest run) leave memory once the kernel has forgotten their inodes, and
 * come back from the index when looked up again. When more than
 * SWEEP_KEEP_OBJECTS stay because the kernel still holds them, the kernel is
 * asked to forget the least recently used (engine_config.forget_name).
 */
#ifndef EXECFS_SWEEP_H
#define EXECFS_SWEEP_H

/* Objects kept in memory, idle, for the kernel's sake. */
#define SWEEP_KEEP_OBJECTS 4096

/* Starts the pass that runs every engine_config.sweep_ms on the engine
 * thread. */
void sweep_start(void);

/* One pass now (tests; engine thread or no engine running). */
void sweep_now(void);

#endif
