/* objects.h - the object table: every query and execution the mount knows,
 * by id and by inode. Objects live until the filesystem stops.
 */
#ifndef EXECFS_OBJECTS_H
#define EXECFS_OBJECTS_H

#include "core.h"

/* What the cache directory holds of an execution's results, probed before
 * the lock is taken (the probe reads the disk). */
struct cached_files {
	int present[FORMAT_COUNT];
	off_t size[FORMAT_COUNT];
	time_t mtime[FORMAT_COUNT];
};

/* Fills files from the cache directory for an execution not in the table
 * yet (for one already there, nothing is read: the table knows). Lock not
 * held. */
void objects_probe(const char *eid, struct cached_files *files);

/* The query with id qid; created when create is set (NULL: out of memory). */
struct query *objects_query_locked(const char *qid, int create);

/* The execution with id eid, or NULL. */
struct execution *objects_execution_locked(const char *eid);

/* The execution with id eid, created if new with the results files holds
 * (NULL: nothing cached). NULL when out of memory. */
struct execution *objects_execution_new_locked(const char *eid, const struct cached_files *files);

/* The object at index (its inode's base), or NULL. */
struct object *objects_at_locked(unsigned index);
unsigned objects_count_locked(void);

/* Calls fn for each object of a type, in the order they were made. */
void objects_each_locked(enum object_type type, void (*fn)(struct object *obj, void *data), void *data);

/* Frees every object (at shutdown, nothing else running). */
void objects_free_all(void);

#endif
