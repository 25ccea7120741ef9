/* index.h - the index on disk: what the mounts of a cache directory know of
 * each query and execution (ids, states, errors, status documents), so that
 * every mount, and a remount, lists and serves them without asking the API.
 *
 * Entries are built in memory under the lock and written by the worker
 * thread, in order, outside it: their fsyncs never delay an answer. A write
 * merges with what the entry holds on disk (another daemon's run is never
 * lost), under a lock shared by the daemons. Objects are read from the index
 * when first looked up, not at start: memory holds what is in use.
 */
#ifndef EXECFS_INDEX_H
#define EXECFS_INDEX_H

#include "cache.h"
#include "core.h"
#include "objects.h"

/* Queues ex's or q's entry for writing (their latest state wins). */
void index_put_execution_locked(struct execution *ex);
void index_put_query_locked(struct query *q);

/* Writes every queued entry now, in the caller (lock not held). */
void index_flush(void);

/* What the cache directory holds of an execution: its index entry and its
 * complete results. Read without the lock, applied under it. */
struct execution_entry {
	int in_table;		/* the table had it: nothing was read */
	int found;		/* the index has an entry */
	struct cached_files files;
	char query_id[72];
	char result_id[72];
	enum exec_state state;
	char *error;
	char *document;
	time_t ended_at;
};

/* Reads eid's entry and results unless the table has it (lock not held). */
void index_read_execution(const char *eid, struct execution_entry *e);

/* The execution eid: the table's, or made from e. NULL: out of memory.
 * Frees what e holds. */
struct execution *index_execution_locked(const char *eid, struct execution_entry *e);

/* Frees what e holds (index_execution_locked does it too). */
void index_execution_entry_free(struct execution_entry *e);

/* What the index holds of a query, and of the run its latest names. */
struct query_entry {
	int in_table;		/* the table had it when it was read */
	int found;		/* an entry newer than the table's was read */
	struct cache_stamp stamp;
	char last[72];
	long long last_at;	/* when `last` was started, ms since the epoch */
	char latest[72];
	time_t latest_checked;
	char *error;
	struct execution_entry latest_run;
};

/* Reads qid's entry if the table does not have it or another daemon wrote
 * it since (one stat when nothing changed). Lock not held. */
void index_read_query(const char *qid, struct query_entry *e);

/* The query qid (made when create is set), with e merged in: a newer run
 * started elsewhere becomes its `last`, a newer latest its latest. NULL:
 * none, or out of memory. Frees what e holds. */
struct query *index_query_locked(const char *qid, struct query_entry *e, int create);

/* Merges an entry about to be written (ours) with the one on disk (disk,
 * NULL: none): the newest `last` and `latest` win, a run's end is never
 * forgotten, a status document never lost. Returns malloc'd text. */
char *index_merge(const char *kind, const char *ours, const char *disk);

/* The names of one kind's entries on disk ("queries", "executions"),
 * sorted; *count set. malloc'd array of malloc'd names; NULL if none. */
char **index_names(const char *kind, size_t *count);
void index_names_free(char **names, size_t count);

#endif
