/* objects.c - the object table: queries and executions by id and by index. */
#include "objects.h"
#include "cache.h"
#include "result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_BUCKETS 4096

static struct object **objects;
static unsigned object_count, object_alloc;
static struct object *buckets[HASH_BUCKETS];

static unsigned hash_id(enum object_type type, const char *id)
{
	unsigned h = 2166136261u ^ (unsigned)type;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % HASH_BUCKETS;
}

static struct object *find_locked(enum object_type type, const char *id)
{
	struct object *o;

	for (o = buckets[hash_id(type, id)]; o; o = o->hash_next)
		if (o->type == type && strcmp(o->id, id) == 0)
			return o;
	return NULL;
}

static int add_locked(struct object *o, enum object_type type, const char *id)
{
	unsigned h;

	if (object_count == object_alloc) {
		unsigned grown = object_alloc ? object_alloc * 2 : 256;
		struct object **table = realloc(objects, grown * sizeof(*table));

		if (!table)
			return -1;
		objects = table;
		object_alloc = grown;
	}
	o->type = type;
	snprintf(o->id, sizeof(o->id), "%s", id);
	o->index = object_count;
	objects[object_count++] = o;
	h = hash_id(type, id);
	o->hash_next = buckets[h];
	buckets[h] = o;
	return 0;
}

void objects_probe(const char *eid, struct cached_files *files)
{
	int known;

	memset(files, 0, sizeof(*files));
	core_lock();
	known = find_locked(OBJECT_EXECUTION, eid) != NULL;
	core_unlock();
	if (known)
		return; /* its results are known already: no disk read */
	for (int f = 0; f < FORMAT_COUNT; f++)
		files->present[f] = cache_result_probe(eid, (enum result_format)f, &files->size[f],
						       &files->mtime[f]) == 0;
}

struct query *objects_query_locked(const char *qid, int create)
{
	struct query *q = (struct query *)find_locked(OBJECT_QUERY, qid);

	if (q || !create)
		return q;
	q = calloc(1, sizeof(*q));
	if (!q || add_locked(&q->obj, OBJECT_QUERY, qid)) {
		free(q);
		return NULL;
	}
	return q;
}

struct execution *objects_execution_locked(const char *eid)
{
	return (struct execution *)find_locked(OBJECT_EXECUTION, eid);
}

struct execution *objects_execution_new_locked(const char *eid, const struct cached_files *files)
{
	struct execution *ex = objects_execution_locked(eid);

	if (ex)
		return ex;
	ex = calloc(1, sizeof(*ex));
	if (!ex || add_locked(&ex->obj, OBJECT_EXECUTION, eid)) {
		free(ex);
		return NULL;
	}
	for (int f = 0; f < FORMAT_COUNT; f++)
		result_init_locked(&ex->results[f], ex, (enum result_format)f,
				   files && files->present[f] ? files->size[f] : -1,
				   files ? files->mtime[f] : 0);
	return ex;
}

struct object *objects_at_locked(unsigned index)
{
	return index < object_count ? objects[index] : NULL;
}

unsigned objects_count_locked(void)
{
	return object_count;
}

void objects_each_locked(enum object_type type, void (*fn)(struct object *obj, void *data), void *data)
{
	for (unsigned i = 0; i < object_count; i++)
		if (objects[i]->type == type)
			fn(objects[i], data);
}

void objects_free_all(void)
{
	for (unsigned i = 0; i < object_count; i++) {
		struct object *o = objects[i];

		if (o->type == OBJECT_QUERY) {
			free(((struct query *)o)->error);
		} else {
			struct execution *ex = (struct execution *)o;

			free(ex->error);
			free(ex->document);
			for (int f = 0; f < FORMAT_COUNT; f++)
				result_free(&ex->results[f]);
		}
		free(o);
	}
	free(objects);
	objects = NULL;
	object_count = object_alloc = 0;
	memset(buckets, 0, sizeof(buckets));
}
