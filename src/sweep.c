/* sweep.c - objects nobody uses leave memory. */
#include "sweep.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "missing.h"
#include "objects.h"
#include "result.h"
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>

/* Names handed to the kernel to forget in one pass. */
#define FORGET_BATCH 8192

static unsigned pass;

static int result_idle(const struct result *r)
{
	return !r->opens && !r->waiters && !r->pins && !r->retired_count && !result_busy(r) &&
	       r->lock_fd < 0 && r->fd < 0;
}

static int idle_locked(struct object *o)
{
	if (o->handles)
		return 0;
	if (o->type == OBJECT_QUERY) {
		struct query *q = (struct query *)o;

		for (int f = 0; f < FORMAT_COUNT; f++)
			if (q->cached_opens[f])
				return 0;
		return !q->resolving;
	} else {
		struct execution *ex = (struct execution *)o;

		if (ex->waiters || ex->poll != POLL_IDLE || ex->ticks || ex->prefetch)
			return 0;
		for (int f = 0; f < FORMAT_COUNT; f++)
			if (!result_idle(&ex->results[f]))
				return 0;
		return 1;
	}
}

/* A query in memory keeps the run its latest.* shows (its open reads no
 * disk) and those whose bytes the kernel caches for its latest.* inode (an
 * address reused by another result would pass for them). */
static void pin_locked(struct query *q)
{
	struct execution *ex = q->latest[0] ? objects_execution_locked(q->latest) : NULL;

	if (ex)
		ex->obj.pinned = pass;
	for (int f = 0; f < FORMAT_COUNT; f++)
		if (q->page_owner[f])
			q->page_owner[f]->ex->obj.pinned = pass;
}

static int by_use(const void *a, const void *b)
{
	const struct object *x = *(struct object *const *)a, *y = *(struct object *const *)b;

	return (x->used_ms > y->used_ms) - (x->used_ms < y->used_ms);
}

struct forget_list {
	size_t count;
	struct {
		fuse_ino_t parent;
		char name[72];
	} names[];
};

static void forget_job(void *data)
{
	struct forget_list *list = data;

	for (size_t i = 0; i < list->count; i++)
		core_config.forget_name(list->names[i].parent, list->names[i].name);
	free(list);
}

/* The least recently used of the idle objects the kernel holds, beyond
 * SWEEP_KEEP_OBJECTS, to be forgotten by the kernel. */
static struct forget_list *over_keep_locked(struct object **held, size_t count)
{
	unsigned live = objects_live_locked();
	size_t n = live > SWEEP_KEEP_OBJECTS ? live - SWEEP_KEEP_OBJECTS : 0;
	struct forget_list *list;

	if (n > count)
		n = count;
	if (n > FORGET_BATCH)
		n = FORGET_BATCH;
	if (!n || !(list = malloc(sizeof(*list) + n * sizeof(list->names[0]))))
		return NULL;
	qsort(held, count, sizeof(*held), by_use);
	list->count = n;
	for (size_t i = 0; i < n; i++) {
		list->names[i].parent = held[i]->type == OBJECT_QUERY ? INO_QUERIES : INO_EXECUTIONS;
		snprintf(list->names[i].name, sizeof(list->names[i].name), "%s", held[i]->id);
	}
	return list;
}

void sweep_now(void)
{
	struct forget_list *forget = NULL;
	struct object **held = NULL;
	size_t held_count = 0;
	long long now = http_now_ms();
	unsigned slots, freed = 0;

	core_lock();
	pass++;
	slots = objects_count_locked();
	for (unsigned i = 0; i < slots; i++) {
		struct object *o = objects_at_locked(i);

		if (o && o->type == OBJECT_QUERY)
			pin_locked((struct query *)o);
	}
	if (core_config.forget_name && objects_live_locked() > SWEEP_KEEP_OBJECTS)
		held = malloc(objects_live_locked() * sizeof(*held));
	for (unsigned i = 0; i < slots; i++) {
		struct object *o = objects_at_locked(i);

		if (!o || !idle_locked(o))
			continue;
		if (o->nlookup) {
			if (held)
				held[held_count++] = o;
			continue;
		}
		if (o->pinned == pass)
			continue;
		if (o->type == OBJECT_EXECUTION && ((struct execution *)o)->missing_until_ms > now)
			missing_add_locked(o->id, ((struct execution *)o)->missing_until_ms);
		objects_free_locked(o);
		freed++;
	}
	if (held)
		forget = over_keep_locked(held, held_count);
	core_unlock();
	free(held);
	if (freed)
		log_debug("sweep: %u objects left memory", freed);
	if (forget && worker_submit(forget_job, forget))
		free(forget);
}

static void sweep(void *data, int cancelled)
{
	(void)data;
	if (cancelled)
		return;
	sweep_now();
	http_later(core_config.sweep_ms, sweep, NULL);
}

void sweep_start(void)
{
	if (core_config.sweep_ms)
		http_later(core_config.sweep_ms, sweep, NULL);
}
