/* reader.c - a cached result as readers see it: opens, reads, closes. */
#include "reader.h"
#include "cache.h"
#include "share.h"
#include "evict.h"
#include "http.h"
#include "log.h"
#include "park.h"
#include "poll.h"
#include "result.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void reader_bind_locked(struct handle *h, struct result *r)
{
	h->result = r;
	r->opens++;
	if (r->state == RESULT_FAILED || r->state == RESULT_UNKEPT) {
		r->error = 0; /* a new open tries again */
		core_set_string(&r->error_message, NULL);
	}
	if (r->state == RESULT_FAILED) {
		/* the bytes an open file still holds are the rejected ones: none
		 * of them is served to this open, nor as the new download's */
		result_set_state_locked(r, RESULT_ABSENT);
		r->size = 0;
	}
	if (r->state == RESULT_ABSENT && r->fd < 0)
		r->size = 0;
}

void reader_open_file(struct handle *h)
{
	struct result *r = h->result;
	char eid[sizeof(r->ex->obj.id)];
	int complete, need, fd;
	off_t size = 0;

	core_lock();
	complete = r->state == RESULT_COMPLETE;
	need = complete && r->fd < 0;
	memcpy(eid, r->ex->obj.id, sizeof(eid));
	core_unlock();
	if (complete)
		cache_result_touch(eid, r->format); /* for every daemon's eviction */
	if (!need)
		return;
	fd = cache_result_open(eid, r->format, &size);
	core_lock();
	if (r->state == RESULT_COMPLETE && r->fd < 0) {
		if (fd >= 0) {
			r->fd = fd;
			r->size = size;
			fd = -1;
		} else {
			result_forget_locked(r); /* removed behind our back */
		}
	}
	core_unlock();
	if (fd >= 0)
		close(fd); /* another open got there first */
}

/* latest.* is one inode whose bytes change from one execution to the next
 * while older opens keep their snapshot: it is read through the page cache
 * only while every open that does so reads the same result (an open
 * bringing another one drops the cached pages, or gets direct I/O while the
 * older snapshot is still open that way). Direct I/O opens never drop
 * another open's cached pages. */
static void latest_flags_locked(struct handle *h, struct fuse_file_info *fi)
{
	struct result *r = h->result;
	struct query *q = (struct query *)h->obj;
	int f = r->format;

	fi->direct_io = 1;
	fi->keep_cache = 1;
	if (!result_whole(r))
		return;
	if (q->cached_opens[f] && q->page_owner[f] != r)
		return;
	fi->direct_io = 0;
	fi->keep_cache = q->page_owner[f] == r;
	q->page_owner[f] = r;
	q->cached_opens[f]++;
	h->cached = 1;
}

/* Open flags for executions/<eid>/results.* (and stream/): direct I/O and
 * size 0 until the result is whole, then the page cache, kept across opens:
 * those bytes never change. */
static void results_flags_locked(struct handle *h, struct fuse_file_info *fi)
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
	int closing[RESULT_RETIRED_MAX], count;
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
	count = result_unpin_locked(r, closing);
	core_unlock();
	while (count > 0)
		close(closing[--count]);
	w->pinned = NULL;
}

/* What a waiter on r not there yet does (lock held): the download started
 * or the run polled, and 0 to wait on; or the errno that ends the wait. */
static int drive_locked(struct waiter *w, struct result *r)
{
	struct execution *ex = r->ex;
	int err;

	if (r->state == RESULT_FAILED)
		return r->error;
	switch (ex->state) {
	case EXEC_SUCCESS:
	case EXEC_PARTIAL:
		share_start_locked(r);
		break;
	case EXEC_FAILURE:
		return EIO;
	case EXEC_CANCELLED:
		return ECANCELED;
	case EXEC_EXPIRED:
		return ENODATA;
	default:
		if ((err = poll_wait_locked(w, ex)))
			return err;
		break;
	}
	if (w->deadline_ms && http_now_ms() >= w->deadline_ms) {
		char note[200];

		snprintf(note, sizeof(note), "a read waited %u s (timeout=%u) and gave up (ETIMEDOUT); "
			 "the run goes on: read again to keep waiting", core_config.timeout,
			 core_config.timeout);
		core_set_string(&ex->wait_note, note);
		log_info("executions/%s/results.%s: the wait ended after %u s (timeout); the run goes on",
			 ex->obj.id, result_format_ext(r->format), core_config.timeout);
		return ETIMEDOUT;
	}
	return 0;
}

/* Whether a read can be answered now (park's ready test). */
static int read_ready_locked(struct waiter *w)
{
	struct result *r = w->target;

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
	return (w->err = drive_locked(w, r)) != 0;
}

int reader_whole_ready_locked(struct waiter *w)
{
	struct result *r = w->target;

	if (result_whole(r))
		return 1;
	return (w->err = drive_locked(w, r)) != 0;
}

int reader_open_now_locked(const struct handle *h)
{
	return tree_kind(h->kind)->stream || result_whole(h->result);
}

static void open_prepare(struct waiter *w);

struct waiter *reader_open_waiter(fuse_req_t req, void *target, int (*ready)(struct waiter *w),
				  struct handle *h, void (*drop)(struct handle *h),
				  struct fuse_file_info *fi)
{
	struct waiter *w = park_waiter_new(req, PARK_REPLY_OPEN, target, ready);

	if (!w) {
		drop(h);
		return NULL;
	}
	w->count = h->result ? &h->result->waiters : NULL;
	w->handle = h;
	w->drop = drop;
	w->prepare = open_prepare;
	w->fi = *fi;
	w->since_ms = http_now_ms();
	if (core_config.timeout)
		w->deadline_ms = w->since_ms + (long long)core_config.timeout * 1000;
	return w;
}

void reader_finish_open(struct handle *h, struct fuse_file_info *fi)
{
	reader_open_file(h);
	core_lock();
	if (tree_kind(h->kind)->role == ROLE_LATEST)
		latest_flags_locked(h, fi);
	else
		results_flags_locked(h, fi);
	core_unlock();
}

static void open_prepare(struct waiter *w)
{
	reader_finish_open(w->handle, &w->fi);
}

int reader_open(fuse_req_t req, struct handle *h, struct fuse_file_info *fi,
		void (*drop)(struct handle *h))
{
	struct waiter *w;
	int now;

	reader_open_file(h); /* evicted meanwhile: it is waited for again */
	core_lock();
	now = reader_open_now_locked(h);
	core_unlock();
	if (now) {
		reader_finish_open(h, fi);
		return 0;
	}
	w = reader_open_waiter(req, h->result, reader_whole_ready_locked, h, drop, fi);
	if (w)
		park(w);
	return ENGINE_PARKED;
}

int reader_read(fuse_req_t req, struct handle *h, size_t size, off_t off)
{
	struct waiter *w = park_waiter_new(req, PARK_REPLY_DATA, h->result, read_ready_locked);

	if (!w)
		return ENGINE_PARKED;
	w->count = &h->result->waiters;
	w->off = off;
	w->size = size;
	w->since_ms = http_now_ms();
	if (core_config.timeout)
		w->deadline_ms = w->since_ms + (long long)core_config.timeout * 1000;
	park(w);
	return ENGINE_PARKED;
}

int reader_release_locked(struct handle *h)
{
	struct result *r = h->result;
	int old;

	if (h->cached) /* latest.*: its share of the inode's page cache */
		((struct query *)h->obj)->cached_opens[r->format]--;
	if (--r->opens > 0 || result_busy(r) || r->fd < 0)
		return -1;
	old = result_set_fd_locked(r, -1);
	if (r->state != RESULT_COMPLETE) {
		r->size = 0; /* a failed download's bytes went with it */
		if (r->state == RESULT_UNKEPT)
			result_set_state_locked(r, r->error ? RESULT_FAILED : RESULT_ABSENT);
	}
	evict_soon_locked();
	return old;
}
