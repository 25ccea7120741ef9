/* evict.c - the cap on the cache: complete results over cache_size go,
 * least recently opened first, removed by the worker thread. */
#include "evict.h"
#include "cache.h"
#include "log.h"
#include "objects.h"
#include "result.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

static int trim_queued;

struct victim {
	char eid[72];
	enum result_format format;
	struct victim *next;
};

/* The least recently used complete result nobody holds, or NULL. */
static struct result *oldest_locked(void)
{
	struct result *oldest = NULL;
	unsigned count = objects_count_locked();

	for (unsigned i = 0; i < count; i++) {
		struct object *o = objects_at_locked(i);
		struct execution *ex = (struct execution *)o;

		if (o->type != OBJECT_EXECUTION)
			continue;
		for (int f = 0; f < FORMAT_COUNT; f++) {
			struct result *r = &ex->results[f];

			if (r->state == RESULT_COMPLETE && r->opens == 0 &&
			    (!oldest || r->last_used < oldest->last_used))
				oldest = r;
		}
	}
	return oldest;
}

/* On the worker thread, in line with the commits: a result evicted here is
 * removed before any later download of it is committed. */
static void trim(void *data)
{
	struct victim *victims = NULL, *v;
	struct result *r;

	(void)data;
	core_lock();
	trim_queued = 0;
	while (results_cached_bytes_locked() > core_config.cache_size && (r = oldest_locked())) {
		v = malloc(sizeof(*v));
		if (!v)
			break;
		memcpy(v->eid, r->ex->obj.id, sizeof(v->eid));
		v->format = r->format;
		v->next = victims;
		victims = v;
		log_debug("evicted executions/%s/results.%s (%lld bytes)", r->ex->obj.id,
			  result_format_ext(r->format), (long long)r->size);
		result_forget_locked(r);
	}
	core_unlock();
	while ((v = victims)) {
		victims = v->next;
		cache_result_remove(v->eid, v->format);
		free(v);
	}
}

void evict_soon_locked(void)
{
	if (results_cached_bytes_locked() <= core_config.cache_size || trim_queued)
		return;
	trim_queued = 1;
	if (worker_submit(trim, NULL)) {
		trim_queued = 0; /* the next change tries again */
		log_error("cannot evict results over cache_size now: no background thread");
	}
}

void evict_now(void)
{
	trim(NULL);
}
