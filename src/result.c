/* result.c - a cached result as readers see it, and eviction under the cap. */
#include "result.h"
#include "cache.h"
#include "download.h"
#include "http.h"
#include "log.h"
#include "objects.h"
#include "park.h"
#include "poll.h"
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESULT_OUT_CAP (256u << 20)

static unsigned long long cached_bytes;	/* complete results on disk */
static int trim_queued;

static const char *const state_names[] = {
	[RESULT_ABSENT] = "absent",	    [RESULT_STREAMING] = "streaming",
	[RESULT_COMMITTING] = "committing", [RESULT_COMPLETE] = "complete",
	[RESULT_UNKEPT] = "unkept",	    [RESULT_FAILED] = "failed",
};

const char *result_state_name(enum result_state state)
{
	return state_names[state];
}

void result_set_state_locked(struct result *r, enum result_state state)
{
	if (r->state == state)
		return;
	log_debug("executions/%s/results.%s: %s -> %s", r->ex->obj.id, result_format_ext(r->format),
		  state_names[r->state], state_names[state]);
	r->state = state;
}

void result_init_locked(struct result *r, struct execution *ex, enum result_format format,
			off_t cached_size, time_t mtime)
{
	r->ex = ex;
	r->format = format;
	r->fd = -1;
	r->retired_fd = -1;
	buffer_init(&r->out, RESULT_OUT_CAP);
	if (cached_size >= 0) {
		r->state = RESULT_COMPLETE;
		r->size = cached_size;
		r->last_used = mtime;
		cached_bytes += (unsigned long long)cached_size;
	}
}

int result_whole(const struct result *r)
{
	return r->state == RESULT_COMMITTING || r->state == RESULT_COMPLETE ||
	       r->state == RESULT_UNKEPT;
}

int result_busy(const struct result *r)
{
	return r->state == RESULT_STREAMING || r->state == RESULT_COMMITTING;
}

void result_set_fd_locked(struct result *r, int fd)
{
	if (r->fd >= 0 && r->pins) {
		if (r->retired_fd >= 0)
			close(r->retired_fd);
		r->retired_fd = r->fd;
	} else if (r->fd >= 0) {
		close(r->fd);
	}
	r->fd = fd;
}

void result_bind_locked(struct handle *h, struct result *r)
{
	h->result = r;
	r->opens++;
	r->last_used = time(NULL);
	if (r->state == RESULT_FAILED || r->state == RESULT_UNKEPT) {
		r->error = 0; /* a new open tries again */
		core_set_string(&r->error_message, NULL);
	}
	if (r->state == RESULT_FAILED)
		result_set_state_locked(r, RESULT_ABSENT);
	if (r->state == RESULT_ABSENT && r->fd < 0)
		r->size = 0;
}

void result_open_file(struct handle *h)
{
	struct result *r = h->result;
	char eid[sizeof(r->ex->obj.id)];
	int need, fd;
	off_t size = 0;

	core_lock();
	need = r->state == RESULT_COMPLETE && r->fd < 0;
	memcpy(eid, r->ex->obj.id, sizeof(eid));
	core_unlock();
	if (!need)
		return;
	fd = cache_result_open(eid, r->format, &size, NULL);
	core_lock();
	if (r->state == RESULT_COMPLETE && r->fd < 0) {
		if (fd >= 0) {
			r->fd = fd;
			r->size = size;
			fd = -1;
		} else { /* removed behind our back */
			cached_bytes -= (unsigned long long)r->size;
			r->size = 0;
			result_set_state_locked(r, RESULT_ABSENT);
		}
	}
	core_unlock();
	if (fd >= 0)
		close(fd); /* another open got there first */
}

void result_open_flags_locked(struct handle *h, struct fuse_file_info *fi)
{
	fi->direct_io = !result_whole(h->result);
	fi->keep_cache = 1;
}

/* A reply that could not have a descriptor of its own (thousands of replies
 * at once): the bytes are copied here, outside the lock, while the pin keeps
 * the result's descriptor open. */
static void read_pinned(struct waiter *w)
{
	struct result *r = w->pinned;
	ssize_t n;

	w->data = malloc(w->data_len);
	n = w->data ? pread(w->pinned_fd, w->data, w->data_len, w->data_off) : -1;
	if (n < 0) {
		log_error("executions/%s: reading the cached result: %s", r->ex->obj.id,
			  strerror(w->data ? errno : ENOMEM));
		free(w->data);
		w->data = NULL;
		w->err = EIO;
	} else {
		w->data_len = (size_t)n;
	}
	core_lock();
	if (--r->pins == 0 && r->retired_fd >= 0) {
		close(r->retired_fd);
		r->retired_fd = -1;
	}
	core_unlock();
	w->pinned = NULL;
}

/* Whether a read can be answered now (park's ready test). */
static int read_ready(struct waiter *w)
{
	struct result *r = w->target;
	struct execution *ex = r->ex;
	int err;

	if (r->size > w->off) {
		/* its own descriptor: the reply goes out after the lock is dropped,
		 * when a restarted download may have replaced r->fd */
		w->data_off = w->off;
		w->data_len = (size_t)(r->size - w->off) < w->size ? (size_t)(r->size - w->off) : w->size;
		w->fd = dup(r->fd);
		if (w->fd < 0) {
			w->pinned = r;
			w->pinned_fd = r->fd;
			w->prepare = read_pinned;
			r->pins++;
		}
		return 1;
	}
	if (result_whole(r))
		return 1; /* end of file */
	if (r->state == RESULT_FAILED)
		return w->err = r->error, 1;
	switch (ex->state) {
	case EXEC_SUCCESS:
	case EXEC_PARTIAL:
		download_start_locked(r);
		break;
	case EXEC_FAILURE:
		return w->err = EIO, 1;
	case EXEC_CANCELLED:
		return w->err = ECANCELED, 1;
	case EXEC_EXPIRED:
		return w->err = ENODATA, 1;
	default:
		if ((err = poll_wait_locked(w, ex)))
			return w->err = err, 1;
		break;
	}
	if (w->deadline_ms && http_now_ms() >= w->deadline_ms)
		return w->err = ETIMEDOUT, 1;
	return 0;
}

int result_read(fuse_req_t req, struct handle *h, size_t size, off_t off)
{
	struct waiter *w = park_waiter_new(req, PARK_REPLY_DATA, h->result, read_ready);

	if (!w)
		return ENGINE_PARKED;
	w->count = &h->result->waiters;
	w->handle = NULL; /* a read hands no handle over */
	w->off = off;
	w->size = size;
	w->since_ms = http_now_ms();
	if (core_config.timeout)
		w->deadline_ms = w->since_ms + (long long)core_config.timeout * 1000;
	park(w);
	return ENGINE_PARKED;
}

void result_release_locked(struct result *r)
{
	if (--r->opens > 0 || result_busy(r) || r->fd < 0)
		return;
	result_set_fd_locked(r, -1);
	if (r->state != RESULT_COMPLETE) {
		r->size = 0; /* a failed download's bytes went with it */
		if (r->state == RESULT_UNKEPT)
			result_set_state_locked(r, r->error ? RESULT_FAILED : RESULT_ABSENT);
	}
	results_trim_locked();
}

void result_committed_locked(struct result *r)
{
	result_set_state_locked(r, RESULT_COMPLETE);
	r->last_used = time(NULL);
	cached_bytes += (unsigned long long)r->size;
	if (r->opens == 0)
		result_set_fd_locked(r, -1);
	results_trim_locked();
}

/* ---- eviction ------------------------------------------------------------- */

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
	while (cached_bytes > core_config.cache_size && (r = oldest_locked())) {
		v = malloc(sizeof(*v));
		if (!v)
			break;
		memcpy(v->eid, r->ex->obj.id, sizeof(v->eid));
		v->format = r->format;
		v->next = victims;
		victims = v;
		log_debug("evicted executions/%s/results.%s (%lld bytes)", r->ex->obj.id,
			  result_format_ext(r->format), (long long)r->size);
		cached_bytes -= (unsigned long long)r->size;
		r->size = 0;
		result_set_state_locked(r, RESULT_ABSENT);
	}
	core_unlock();
	while ((v = victims)) {
		victims = v->next;
		cache_result_remove(v->eid, v->format);
		free(v);
	}
}

void results_trim_locked(void)
{
	if (cached_bytes <= core_config.cache_size || trim_queued)
		return;
	trim_queued = 1;
	if (worker_submit(trim, NULL)) {
		trim_queued = 0; /* the next change tries again */
		log_error("cannot evict results over cache_size now: no background thread");
	}
}

unsigned long long results_cached_bytes_locked(void)
{
	return cached_bytes;
}

void result_free(struct result *r)
{
	if (r->state == RESULT_COMPLETE)
		cached_bytes -= (unsigned long long)r->size;
	download_free(r);
	if (r->fd >= 0)
		close(r->fd);
	if (r->retired_fd >= 0)
		close(r->retired_fd);
	r->fd = r->retired_fd = -1;
	free(r->error_message);
	r->error_message = NULL;
}
