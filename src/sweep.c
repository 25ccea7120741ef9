/* sweep.c - objects nobody uses leave memory. */
#include "sweep.h"
#include "core.h"
#include "http.h"
#include "log.h"
#include "missing.h"
#include "objects.h"
#include "result.h"
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Every this many passes, the heap's free pages go back to the system: a
 * download's 1 MB buffers leave holes that glibc keeps otherwise, and RSS
 * would show the highest the heap ever was, not what it holds. */
#define TRIM_EVERY_PASSES 30

/* Names handed to the kernel to forget in one pass. */
#define FORGET_BATCH 8192

static unsigned pass;

static int result_idle(const struct result *r)
{
	return !r->opens && !r->waiters && !r->pins && !r->retired_count && !result_busy(r) &&
	       r->lock_fd < 0 && r->fd < 0 && !r->dl;
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

/* Whether o holds nothing worth keeping: an id the API does not know, a
 * query never run nor read here or through another mount. */
static int worthless_locked(const struct object *o)
{
	return o->type == OBJECT_QUERY ? !((const struct query *)o)->listed
				       : !((const struct execution *)o)->known;
}

/* The order objects go in when too many are kept: the worthless first,
 * then the least recently used. */
static int by_use(const void *a, const void *b)
{
	const struct object *x = *(struct object *const *)a, *y = *(struct object *const *)b;
	int wx = worthless_locked(x), wy = worthless_locked(y);

	if (wx != wy)
		return wy - wx;
	return (x->used_ms > y->used_ms) - (x->used_ms < y->used_ms);
}

struct forget_list {
	size_t count;
	struct {
		fuse_ino_t parent;
		char name[72];
	} names[];
};

/* The kernel's invalidations run on a thread of their own: one waits for
 * the directory's lock, which a lookup parked there holds until its poll
 * answers (minutes, under the API's 429s); the worker's commits must not. */
static pthread_t forget_thread;
static int forget_started;	/* forget_thread is to be joined */
static int forget_running;	/* core lock: it has not finished yet */

static void *forget_main(void *data)
{
	struct forget_list *list = data;

	for (size_t i = 0; i < list->count; i++)
		core_config.forget_name(list->names[i].parent, list->names[i].name);
	free(list);
	core_lock();
	forget_running = 0;
	core_unlock();
	return NULL;
}

void sweep_wait_forgets(void)
{
	if (forget_started)
		pthread_join(forget_thread, NULL);
	forget_started = 0;
}

/* Hands list to a new forget thread unless one still runs (then the next
 * pass names them again). */
static void forget_start(struct forget_list *list)
{
	int busy;

	core_lock();
	busy = forget_running;
	forget_running = 1;
	core_unlock();
	if (busy) {
		free(list);
		return;
	}
	/* the last one has finished its work (forget_running was 0): this
	 * join is immediate. The engine thread must never wait for one that
	 * has not: it may wait for a lookup that waits for this thread. */
	sweep_wait_forgets();
	if (pthread_create(&forget_thread, NULL, forget_main, list)) {
		log_error("cannot start a thread to let the kernel forget names");
		free(list);
		core_lock();
		forget_running = 0;
		core_unlock();
		return;
	}
	forget_started = 1;
}

static void free_locked(struct object *o, long long now)
{
	if (o->type == OBJECT_EXECUTION && ((struct execution *)o)->missing_until_ms > now)
		missing_add_locked(o->id, ((struct execution *)o)->missing_until_ms);
	objects_free_locked(o);
}

/* Names worth nothing the kernel holds are handed back after this long
 * unused, whatever the count (a crawler's random names). */
#define WORTHLESS_IDLE_MS 10000

static void name_locked(struct forget_list *list, const struct object *o)
{
	list->names[list->count].parent = o->type == OBJECT_QUERY ? INO_QUERIES : INO_EXECUTIONS;
	snprintf(list->names[list->count].name, sizeof(list->names[0].name), "%s", o->id);
	list->count++;
}

/* The idle objects in the order they go: beyond SWEEP_KEEP_OBJECTS, freed
 * if the kernel holds none of their inodes, else named for the kernel to
 * forget (freed by a later pass); and worthless names unused for
 * WORTHLESS_IDLE_MS named anyway. Returns the names, or NULL. */
static struct forget_list *trim_locked(struct object **idle, size_t count, long long now,
				       unsigned *freed)
{
	unsigned live = objects_live_locked();
	size_t excess = live > SWEEP_KEEP_OBJECTS ? live - SWEEP_KEEP_OBJECTS : 0;
	struct forget_list *list = NULL;

	if (core_config.forget_name)
		list = malloc(sizeof(*list) + (count < FORGET_BATCH ? count : FORGET_BATCH) *
						      sizeof(list->names[0]));
	if (list)
		list->count = 0;
	qsort(idle, count, sizeof(*idle), by_use);
	for (size_t i = 0; i < count; i++) {
		struct object *o = idle[i];
		int worthless = worthless_locked(o);

		if (!excess && !worthless)
			break; /* the worthless come first */
		if (excess && !o->nlookup && o->pinned != pass) {
			free_locked(o, now);
			(*freed)++;
			excess--;
		} else if (o->nlookup && list && list->count < FORGET_BATCH &&
			   (excess || now - o->used_ms > WORTHLESS_IDLE_MS)) {
			name_locked(list, o);
			excess -= excess > 0;
		}
	}
	if (list && !list->count) {
		free(list);
		list = NULL;
	}
	return list;
}

void sweep_now(void)
{
	struct forget_list *forget = NULL;
	struct object **idle = NULL;
	size_t idle_count = 0;
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
	idle = malloc((objects_live_locked() + 1) * sizeof(*idle));
	for (unsigned i = 0; i < slots; i++) {
		struct object *o = objects_at_locked(i);

		if (!o || !idle_locked(o))
			continue;
		if (!o->nlookup && o->pinned != pass && worthless_locked(o)) {
			free_locked(o, now); /* nothing to keep */
			freed++;
		} else if (idle) {
			idle[idle_count++] = o;
		}
	}
	if (idle)
		forget = trim_locked(idle, idle_count, now, &freed);
	core_unlock();
	free(idle);
	if (freed)
		log_debug("sweep: %u objects left memory", freed);
	if (pass % TRIM_EVERY_PASSES == 0)
		malloc_trim(0);
	if (forget)
		forget_start(forget);
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
