/* objects.c - the object table: queries and executions by id and by index. */
#include "objects.h"
#include "http.h"
#include "result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_BUCKETS 4096

static struct object **objects;		/* by index; NULL: a free slot */
static unsigned object_count, object_alloc;	/* slots used, allocated */
static unsigned *free_slots, free_count, free_alloc;
static unsigned live_count;
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

	/* a freed slot: the kernel holds none of its inodes (sweep.c) */
	if (free_count) {
		o->index = free_slots[--free_count];
		objects[o->index] = o;
		goto placed;
	}
	if (object_count == object_alloc) {
		unsigned grown = object_alloc ? object_alloc * 2 : 256;
		struct object **table = realloc(objects, grown * sizeof(*table));

		if (!table)
			return -1;
		objects = table;
		object_alloc = grown;
	}
	o->index = object_count;
	objects[object_count++] = o;
placed:
	o->type = type;
	snprintf(o->id, sizeof(o->id), "%s", id);
	o->used_ms = http_now_ms();
	live_count++;
	h = hash_id(type, id);
	o->hash_next = buckets[h];
	buckets[h] = o;
	return 0;
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
				   files && files->present[f] ? files->size[f] : -1);
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

unsigned objects_live_locked(void)
{
	return live_count;
}

void objects_each_locked(enum object_type type, void (*fn)(struct object *obj, void *data), void *data)
{
	for (unsigned i = 0; i < object_count; i++)
		if (objects[i] && objects[i]->type == type)
			fn(objects[i], data);
}

void objects_looked_up_locked(struct object *o)
{
	o->nlookup++;
	o->used_ms = http_now_ms();
}

static void destroy(struct object *o)
{
	if (o->type == OBJECT_QUERY) {
		free(((struct query *)o)->error);
	} else {
		struct execution *ex = (struct execution *)o;

		free(ex->error);
		free(ex->wait_note);
		free(ex->document);
		for (int f = 0; f < FORMAT_COUNT; f++)
			result_free(&ex->results[f]);
	}
	free(o);
}

void objects_free_locked(struct object *o)
{
	struct object **p = &buckets[hash_id(o->type, o->id)];

	while (*p && *p != o)
		p = &(*p)->hash_next;
	if (*p)
		*p = o->hash_next;
	if (free_count == free_alloc) {
		unsigned grown = free_alloc ? free_alloc * 2 : 256;
		unsigned *slots = realloc(free_slots, grown * sizeof(*slots));

		if (!slots)
			return; /* kept: never a dangling entry */
		free_slots = slots;
		free_alloc = grown;
	}
	objects[o->index] = NULL;
	free_slots[free_count++] = o->index;
	live_count--;
	destroy(o);
}

void objects_free_all(void)
{
	for (unsigned i = 0; i < object_count; i++)
		if (objects[i])
			destroy(objects[i]);
	free(objects);
	free(free_slots);
	objects = NULL;
	free_slots = NULL;
	object_count = object_alloc = free_count = free_alloc = live_count = 0;
	memset(buckets, 0, sizeof(buckets));
}
