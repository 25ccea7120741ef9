/* objects.h - the object table: every query and execution the mount knows,
 * by id and by inode. An object nobody uses leaves it (sweep.c); its slot,
 * and so its inode numbers, are reused only once the kernel forgot them.
 */
#ifndef EXECFS_OBJECTS_H
#define EXECFS_OBJECTS_H

#include "core.h"

/* What the cache directory holds of an execution's results, read before
 * the lock is taken (index.c). */
struct cached_files {
	int present[FORMAT_COUNT];
	off_t size[FORMAT_COUNT];
};

/* The query with id qid; created when create is set (NULL: out of memory). */
struct query *objects_query_locked(const char *qid, int create);

/* The execution with id eid, or NULL. */
struct execution *objects_execution_locked(const char *eid);

/* The execution with id eid, created if new with the results files holds
 * (NULL: nothing cached). NULL when out of memory. */
struct execution *objects_execution_new_locked(const char *eid, const struct cached_files *files);

/* The object at index (its inode's base), or NULL (none, or freed). */
struct object *objects_at_locked(unsigned index);
/* Slots in the table (objects_at_locked's bound), and objects in it. */
unsigned objects_count_locked(void);
unsigned objects_live_locked(void);

/* An entry of o's was sent to the kernel: one more reference. */
void objects_looked_up_locked(struct object *o);

/* Frees o (nobody uses it; sweep.c decides). */
void objects_free_locked(struct object *o);

/* Calls fn for each object of a type, in the order they were made. */
void objects_each_locked(enum object_type type, void (*fn)(struct object *obj, void *data), void *data);

/* Frees every object (at shutdown, nothing else running). */
void objects_free_all(void);

#endif
