/* share.c - one download per result across daemons: claim it, or follow
 * the daemon that holds the claim. */
#include "share.h"
#include "cache.h"
#include "download.h"
#include "http.h"
#include "log.h"
#include "park.h"
#include "result.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* How often a followed file is looked at: while it is open or waited for
 * here, and while it is not. */
#define FOLLOW_WAITED_MS 20
#define FOLLOW_IDLE_MS 250
/* Claims that find the owner has not named its file yet, before this daemon
 * downloads on its own (an owner that never names it: a duplicate download,
 * never a wrong one). */
#define CLAIM_TRIES_MAX 250

static void claim(void *data, int cancelled);

static void fail(struct result *r, int err, const char *what)
{
	struct waiter *ready = NULL;
	int old = -1;

	log_error("executions/%s/results.%s: %s: %s", r->ex->obj.id, result_format_ext(r->format),
		  what, strerror(err));
	core_lock();
	r->error = err;
	core_set_string(&r->error_message, what);
	if (r->opens == 0) { /* a followed file's descriptor: its blocks go */
		old = result_set_fd_locked(r, -1);
		r->size = 0;
	}
	result_set_state_locked(r, RESULT_FAILED);
	park_wake_locked(r, &ready);
	core_unlock(); /* r may leave memory from here */
	if (old >= 0)
		close(old);
	park_send(ready);
}

static void claim_later(struct result *r, long delay_ms)
{
	if (http_later(delay_ms, claim, r))
		fail(r, ENOMEM, "cannot schedule the download");
}

/* More of the followed file is on disk: readers waiting for it get it. */
static void grown(struct result *r, off_t size)
{
	struct waiter *ready = NULL;

	core_lock();
	if (size > r->size) {
		r->size = size;
		if (r->waiters)
			park_wake_locked(r, &ready);
	}
	core_unlock();
	park_send(ready);
}

static void follow_tick(void *data, int cancelled)
{
	struct result *r = data;
	struct cache_claim c = {.lock_fd = r->lock_fd};
	off_t size = 0;
	int rc, waited;

	if (cancelled)
		return;
	core_lock();
	c.fd = r->fd;
	core_unlock();
	rc = cache_result_follow(r->ex->obj.id, r->format, &c, &size);
	if (rc == FOLLOW_RUNNING) {
		grown(r, size);
		core_lock();
		waited = r->waiters > 0 || r->opens > 0;
		core_unlock();
		if (http_later(waited ? FOLLOW_WAITED_MS : FOLLOW_IDLE_MS, follow_tick, r))
			rc = -ENOMEM;
		else
			return;
	}
	close(r->lock_fd); /* watched, never held: it is the owner's to remove */
	r->lock_fd = -1;
	if (rc == FOLLOW_COMMITTED) {
		download_completed(r, -1, size, "downloaded by another daemon");
		return;
	}
	/* its owner failed or died: the bytes this daemon served are the
	 * API's, and a new download writes the same ones */
	log_info("executions/%s/results.%s: the daemon downloading it stopped; claiming it",
		 r->ex->obj.id, result_format_ext(r->format));
	claim_later(r, 0);
}

static void follow(struct result *r, const struct cache_claim *c)
{
	int old;

	r->lock_fd = c->lock_fd;
	core_lock();
	old = result_set_fd_locked(r, c->fd);
	r->size = 0;
	core_unlock();
	if (old >= 0)
		close(old);
	log_debug("executions/%s/results.%s: following another daemon's download", r->ex->obj.id,
		  result_format_ext(r->format));
	follow_tick(r, 0);
}

/* On the engine thread: who downloads r. */
static void claim(void *data, int cancelled)
{
	struct result *r = data;
	struct cache_claim c;
	int rc;

	if (cancelled)
		return; /* the filesystem is going away */
	rc = cache_result_claim(r->ex->obj.id, r->format, &c);
	if (rc == -EAGAIN && ++r->claim_tries < CLAIM_TRIES_MAX) {
		claim_later(r, FOLLOW_WAITED_MS);
		return;
	}
	r->claim_tries = 0;
	switch (rc) {
	case CLAIM_COMPLETE:
		download_completed(r, c.fd, c.size, "found in the cache directory");
		break;
	case CLAIM_FOLLOW:
		follow(r, &c);
		break;
	case CLAIM_OWNER:
		download_run(r, c.lock_fd);
		break;
	case -EAGAIN:
		log_info("executions/%s/results.%s: the daemon holding its download never named "
			 "its file; downloading it here too", r->ex->obj.id,
			 result_format_ext(r->format));
		download_run(r, -1);
		break;
	default:
		fail(r, -rc, "cannot claim the download in the cache directory");
		break;
	}
}

void share_start_locked(struct result *r)
{
	if (result_busy(r) || r->state == RESULT_COMPLETE)
		return;
	r->error = 0;
	r->size = 0; /* bytes of an earlier attempt are not this download's */
	result_set_state_locked(r, RESULT_STREAMING);
	if (http_later(0, claim, r)) { /* never stuck "downloading" */
		r->error = ENOMEM;
		core_set_string(&r->error_message, "out of memory for the download");
		result_set_state_locked(r, RESULT_FAILED);
	}
}
