/* evict.c - the cap on the cache: complete results over cache_size go,
 * least recently opened by any daemon on the directory first, removed by
 * the worker thread. */
#include "evict.h"
#include "cache.h"
#include "log.h"
#include "objects.h"
#include "result.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

static int trim_queued;

static int by_last_open(const void *a, const void *b)
{
	const struct cache_file *x = a, *y = b;

	return (x->atime_ns > y->atime_ns) - (x->atime_ns < y->atime_ns);
}

/* Whether this daemon may evict file: not open here, not being downloaded
 * here. A result it knows complete is forgotten (its next open claims it
 * again, and finds it on disk if the removal below does not happen). */
static int evictable_locked(const struct cache_file *file)
{
	struct execution *ex = objects_execution_locked(file->eid);
	struct result *r = ex ? &ex->results[file->format] : NULL;

	if (r && (r->opens > 0 || result_busy(r)))
		return 0;
	if (r && r->state == RESULT_COMPLETE)
		result_forget_locked(r);
	return 1;
}

/* On the worker thread, in line with this daemon's commits. The total is
 * the directory's, whatever daemon put the results there; other daemons
 * holding an evicted file open keep reading it. */
static void trim(void *data)
{
	unsigned long long total = 0;
	size_t count = 0, i;
	struct cache_file *files = cache_results_scan(&count);
	int ok;

	(void)data;
	for (i = 0; i < count; i++)
		total += (unsigned long long)files[i].size;
	core_lock();
	trim_queued = 0;
	results_set_cached_bytes_locked(total);
	core_unlock();
	if (total > core_config.cache_size)
		qsort(files, count, sizeof(*files), by_last_open);
	for (i = 0; i < count && total > core_config.cache_size; i++) {
		core_lock();
		ok = evictable_locked(&files[i]);
		core_unlock();
		if (!ok || cache_result_remove_if(&files[i]))
			continue;
		total -= (unsigned long long)files[i].size;
		log_debug("evicted executions/%s/results.%s (%lld bytes)", files[i].eid,
			  result_format_ext(files[i].format), (long long)files[i].size);
	}
	core_lock();
	results_set_cached_bytes_locked(total);
	core_unlock();
	free(files);
}

static void queue_trim_locked(void)
{
	if (trim_queued)
		return;
	trim_queued = 1;
	if (worker_submit(trim, NULL)) {
		trim_queued = 0; /* the next change tries again */
		log_error("cannot evict results over cache_size now: no background thread");
	}
}

void evict_soon_locked(void)
{
	if (results_cached_bytes_locked() > core_config.cache_size)
		queue_trim_locked();
}

void evict_after_commit_locked(void)
{
	/* other daemons' results count too: the directory is looked at */
	queue_trim_locked();
}

void evict_now(void)
{
	trim(NULL);
}
