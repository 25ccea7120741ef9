/* cache.h - the cache directory: result files and the persisted index.
 *
 * Layout under cache_dir (0700, files 0600):
 *   results/<eid>.<ext>        a complete result, never rewritten
 *   results/<eid>.<ext>.<pid>-<n>.part  a download under way, named by its
 *                              daemon and locked while it runs; removed at
 *                              startup once its owner is gone
 *   executions/<eid>           the index entry of an execution (JSON)
 *   queries/<qid>              the index entry of a query (JSON)
 * Index entries and results become visible only complete: written to a
 * temporary name, fsync'd, renamed. A crash leaves nothing half-written
 * under a final name.
 */
#ifndef EXECFS_CACHE_H
#define EXECFS_CACHE_H

#include <stddef.h>
#include <sys/types.h>

#include "backend.h"

/* Opens (creating, 0700) the cache directory and its subdirectories, and
 * removes downloads a previous run left unfinished. Returns 0 or -errno. */
int cache_open(const char *dir);

void cache_close(void);

/* Writes an index entry ("executions", eid) atomically. Returns 0 or -errno. */
int cache_put_entry(const char *kind, const char *name, const char *data, size_t len);

/* Reads an index entry whole (NUL-terminated, malloc'd), NULL if absent. */
char *cache_get_entry(const char *kind, const char *name);

/* Calls fn for each entry name of an index kind. */
void cache_list_entries(const char *kind, void (*fn)(const char *name, void *data), void *data);

/* Opens a complete result read-only; sets *size and, if not NULL, *mtime.
 * Returns fd or -errno. */
int cache_result_open(const char *eid, enum result_format format, off_t *size, time_t *mtime);

/* Whether a complete result is there, with its size and mtime, without
 * opening it. Returns 0 or -errno. */
int cache_result_probe(const char *eid, enum result_format format, off_t *size, time_t *mtime);

/* Creates the temporary file of a download, a name of its own (into part,
 * relative to the cache directory), locked while fd stays open. Returns fd
 * (read-write) or -errno. */
int cache_result_begin(const char *eid, enum result_format format, char *part, size_t partlen);

/* The download is complete: fsync and rename part into place. fd stays
 * usable. */
int cache_result_commit(const char *part, const char *eid, enum result_format format, int fd);

/* Removes a complete result (evicted). Readers holding it open keep reading. */
void cache_result_remove(const char *eid, enum result_format format);

/* The download failed: remove its temporary file (part "" : none). */
void cache_result_abandon(const char *part);

#endif
