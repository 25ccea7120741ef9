/* lock.h - the one lock of the core.
 *
 * It guards every query, execution, result, open handle's engine fields and
 * parked request. Rules, checked by the names and by the ASan build:
 * - a function that needs the lock held says so in its name (`_locked`);
 * - no function releases a lock its caller took;
 * - no disk or network I/O while it is held (hand the work to the worker
 *   thread, or do it before taking the lock / after dropping it).
 * The ASan build uses an error-checking mutex: taking it twice on one
 * thread, or releasing it unheld, aborts with a message instead of hanging.
 */
#ifndef EXECFS_LOCK_H
#define EXECFS_LOCK_H

void core_lock(void);
void core_unlock(void);

/* Whether this build checks the lock (1: a misuse aborts). */
int core_lock_checked(void);

#endif
