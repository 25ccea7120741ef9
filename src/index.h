/* index.h - the index on disk: what the mount knows of each query and
 * execution (ids, states, errors, status documents), kept in the cache
 * directory so that a remount lists and serves them without asking the API.
 *
 * Entries are built in memory under the lock and written by the worker
 * thread, in order, outside it: their fsyncs never delay an answer.
 */
#ifndef EXECFS_INDEX_H
#define EXECFS_INDEX_H

#include "core.h"

/* Queues ex's or q's entry for writing (their latest state wins). */
void index_put_execution_locked(struct execution *ex);
void index_put_query_locked(struct query *q);

/* Reads every entry into the object table, and the cached results of the
 * runs they name. At start, before anything else runs; lock not held. */
void index_load(void);

/* Writes every queued entry now, in the caller (lock not held). */
void index_flush(void);

#endif
