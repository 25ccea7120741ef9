/* poll.c - status polling, and what a status tells of a run. */
#include "poll.h"
#include "apicall.h"
#include "share.h"
#include "http.h"
#include "index.h"
#include "log.h"
#include "missing.h"
#include "objects.h"
#include "park.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {
	[POLL_IDLE] = "idle", [POLL_SCHEDULED] = "scheduled", [POLL_INFLIGHT] = "in flight",
	[POLL_ANSWERED] = "answered",
};

void poll_set_state_locked(struct execution *ex, enum poll_state state)
{
	if (ex->poll == state)
		return;
	log_debug("executions/%s: poll %s -> %s", ex->obj.id, state_names[ex->poll], state_names[state]);
	if (ex->poll == POLL_IDLE)
		ex->poll_delay_ms = POLL_FIRST_MS; /* a new chain backs off afresh */
	ex->poll = state;
}

struct poll_tick {
	struct execution *ex;
	int generation;
};

static void poll_fire(void *data, int cancelled);

static void schedule_locked(struct execution *ex, long delay_ms)
{
	struct poll_tick *tick = malloc(sizeof(*tick));

	if (!tick) {
		log_error("executions/%s: out of memory for a status poll", ex->obj.id);
		poll_set_state_locked(ex, POLL_IDLE); /* the next reader tries again */
		return;
	}
	poll_set_state_locked(ex, POLL_SCHEDULED);
	tick->ex = ex;
	tick->generation = ex->poll_generation;
	if (http_later(delay_ms, poll_fire, tick)) {
		free(tick);
		poll_set_state_locked(ex, POLL_IDLE); /* the next reader tries again */
		return;
	}
	ex->ticks++; /* a stale one still reads ex when it fires */
}

void poll_ensure_locked(struct execution *ex)
{
	if (ex->poll == POLL_IDLE)
		schedule_locked(ex, 0);
}

void poll_now_locked(struct execution *ex)
{
	if (ex->poll == POLL_INFLIGHT)
		return;
	ex->poll_generation++; /* a poll scheduled later is stale */
	schedule_locked(ex, 0);
}

/* Waiters on ex or its results, and a prefetch to come. */
static int interest_locked(struct execution *ex)
{
	int n = ex->waiters + (ex->prefetch != 0);

	for (int f = 0; f < FORMAT_COUNT; f++)
		n += ex->results[f].waiters;
	return n;
}

/* Whether a status poll begun after w came has ended. A poll under way when
 * w came may have been sent before the state w asks about. w's mark is taken
 * at the first call. */
static int polled_since_locked(struct waiter *w, struct execution *ex)
{
	if (!w->marked) {
		w->marked = 1;
		w->mark = ex->poll_seq;
	}
	return (int)(ex->poll_done_seq - w->mark) > 0;
}

int poll_wait_locked(struct waiter *w, struct execution *ex)
{
	int fresh;

	if (ex->lookup_error && ex->lookup_error != EIO && ex->lookup_error != EAGAIN)
		return ex->lookup_error;
	/* a status that stays broken (HTML, garbage, 5xx after the HTTP
	 * retries) ends the wait: after POLL_FAILURES_MAX failed polls in a
	 * row, one of them begun after the reader came */
	fresh = polled_since_locked(w, ex); /* marks when the reader came */
	if (ex->lookup_error && ex->poll_failures >= POLL_FAILURES_MAX && fresh)
		return ex->lookup_error;
	poll_ensure_locked(ex);
	return 0;
}

/* Acts on what a poll learnt: downloads for readers and prefetches, or
 * their errors. */
static void state_changed_locked(struct execution *ex, struct waiter **ready)
{
	int succeeded = ex->state == EXEC_SUCCESS || ex->state == EXEC_PARTIAL;

	for (int f = 0; f < FORMAT_COUNT; f++) {
		struct result *r = &ex->results[f];

		if (succeeded && (r->waiters || (ex->prefetch & (1u << f))))
			share_start_locked(r);
		park_wake_locked(r, ready);
	}
	if (exec_state_is_terminal(ex->state))
		ex->prefetch = 0;
	park_wake_locked(ex, ready);
}

void poll_prefetch_locked(struct execution *ex, unsigned formats, struct waiter **ready)
{
	ex->prefetch = formats;
	if (exec_state_is_terminal(ex->state))
		state_changed_locked(ex, ready); /* ended already: the downloads now */
	else
		poll_ensure_locked(ex);
}

void poll_apply_status_locked(struct execution *ex, struct exec_info *info)
{
	int changed = !ex->known || ex->state != info->state;

	ex->known = 1;
	ex->missing_until_ms = 0;
	ex->state = info->state;
	if (info->ended_at > 0 && info->ended_at != ex->ended_at) {
		ex->ended_at = info->ended_at;
		changed = 1;
	} else if (!ex->ended_at && exec_state_is_terminal(ex->state)) {
		ex->ended_at = time(NULL);
		changed = 1;
	}
	if (info->query_id[0] && tree_valid_qid(info->query_id))
		snprintf(ex->query_id, sizeof(ex->query_id), "%s", info->query_id);
	if (info->result_id[0] && tree_valid_eid(info->result_id) &&
	    strcmp(info->result_id, ex->result_id) != 0) {
		snprintf(ex->result_id, sizeof(ex->result_id), "%s", info->result_id);
		changed = 1;
	}
	if (info->error_message)
		core_set_string(&ex->error, info->error_message);
	if (info->document) {
		free(ex->document);
		ex->document = info->document;
		info->document = NULL;
		ex->status_at_ms = http_now_ms();
	}
	if (changed && ex->state == EXEC_FAILURE)
		log_error("executions/%s: the run failed: %s", ex->obj.id, ex->error ? ex->error : "no message");
	if (changed && ex->query_id[0])
		index_put_execution_locked(ex);
}

static void poll_done(struct http_request *req);

static void poll_fire(void *data, int cancelled)
{
	struct poll_tick *tick = data;
	struct execution *ex = tick->ex;
	const struct backend *b = core_config.backend;
	struct api_request api = {0};
	struct http_request *req;
	struct exec_info info = {0};
	struct waiter *ready = NULL;
	int stale;

	core_lock();
	ex->ticks--;
	stale = cancelled || tick->generation != ex->poll_generation || ex->poll != POLL_SCHEDULED;
	free(tick);
	if (stale) {
		core_unlock();
		return;
	}
	if (b->ops->status_local && b->ops->status_local(b, ex->obj.id, &info)) {
		ex->lookup_error = 0;
		ex->poll_failures = 0;
		poll_apply_status_locked(ex, &info);
		poll_set_state_locked(ex, POLL_IDLE);
		ex->poll_done_ms = http_now_ms();
		ex->poll_done_seq = ++ex->poll_seq;
		state_changed_locked(ex, &ready);
		core_unlock();
		exec_info_free(&info);
		park_send(ready);
		return;
	}
	req = b->ops->status_request(b, ex->obj.id, &api)
		      ? NULL : apicall_new(&api, CALL_STATUS, "executions/%s/status", ex->obj.id);
	if (!req) {
		poll_set_state_locked(ex, POLL_IDLE);
		core_unlock();
		return;
	}
	poll_set_state_locked(ex, POLL_INFLIGHT);
	ex->poll_seq++;
	req->data = ex;
	req->on_done = poll_done;
	core_unlock();
	http_submit(req);
}

static void poll_done(struct http_request *req)
{
	struct execution *ex = req->data;
	struct api_response resp;
	struct exec_info info = {0};
	struct api_error err;
	struct waiter *ready = NULL;
	int rc = apicall_outcome(req, &resp, &err);

	if (!rc)
		rc = core_config.backend->ops->status_parse(core_config.backend, &resp, &info, &err);
	core_lock();
	if (rc && err.err == ENOENT && ex->known && req->status >= 500)
		err.err = EIO; /* redash's 500 means "unknown job" only for a job never seen: for
				* one that was running it is a server error, a failed poll */
	poll_set_state_locked(ex, POLL_ANSWERED);
	ex->poll_done_seq = ex->poll_seq;
	ex->lookup_error = 0;
	ex->poll_failures = rc && (err.err == EIO || err.err == EAGAIN) ? ex->poll_failures + 1 : 0;
	if (!rc) {
		poll_apply_status_locked(ex, &info);
	} else if (err.err == ENOENT || (err.err == EINVAL && req->status == 400)) {
		if (!ex->known)
			ex->missing_until_ms = http_now_ms() + MISSING_CACHE_MS;
		ex->lookup_error = ENOENT;
	} else {
		ex->lookup_error = err.err;
		apicall_log_failure(req, &err);
	}
	ex->poll_done_ms = http_now_ms();
	state_changed_locked(ex, &ready); /* may want a fresh poll at once */
	if (ex->poll != POLL_ANSWERED) {
		/* it did (poll_now_locked): that poll is the one chain; a second
		 * scheduled here would double the requests for good */
	} else if (!exec_state_is_terminal(ex->state) && interest_locked(ex) &&
		   (ex->known || ex->lookup_error == EIO || ex->lookup_error == EAGAIN)) {
		int delay = ex->poll_delay_ms;

		schedule_locked(ex, delay);
		ex->poll_delay_ms = delay * 2 > POLL_MAX_MS ? POLL_MAX_MS : delay * 2;
	} else {
		poll_set_state_locked(ex, POLL_IDLE);
	}
	core_unlock();
	exec_info_free(&info);
	http_request_free(req);
	park_send(ready);
}

/* ---- requests that wait for a fresh status ---------------------------- */

static int status_open_ready_locked(struct waiter *w)
{
	struct execution *ex = w->target;

	if (!polled_since_locked(w, ex)) {
		poll_now_locked(ex);
		return 0;
	}
	free(w->handle->text);
	w->handle->text = tree_file_text_locked(w->handle->obj, w->handle->kind, &w->handle->text_len);
	return 1;
}

int poll_open_status(fuse_req_t req, struct execution *ex, struct handle *h,
		     struct fuse_file_info *fi, void (*drop)(struct handle *h))
{
	struct waiter *w;
	long long now = http_now_ms();
	int stale;

	core_lock();
	/* a run learnt from latest.* has no status document yet; a failing
	 * API is not asked more than once a second however many readers */
	stale = (!exec_state_is_terminal(ex->state) || !ex->document) &&
		now - ex->status_at_ms > STATUS_FRESH_MS && now - ex->poll_done_ms > STATUS_FRESH_MS;
	if (!stale) {
		h->text = tree_file_text_locked(h->obj, h->kind, &h->text_len);
		core_unlock();
		return 0;
	}
	core_unlock();
	w = park_waiter_new(req, PARK_REPLY_OPEN, ex, status_open_ready_locked);
	if (!w) {
		drop(h);
		return ENGINE_PARKED;
	}
	w->count = &ex->waiters;
	w->execution = ex;
	w->handle = h;
	w->drop = drop;
	w->fi = *fi;
	w->since_ms = now;
	core_lock();
	polled_since_locked(w, ex); /* marks it, before the poll it waits for */
	poll_now_locked(ex);
	core_unlock();
	park(w);
	return ENGINE_PARKED;
}

static int lookup_ready_locked(struct waiter *w)
{
	struct execution *ex = w->target;

	if (ex->known) {
		tree_fill_entry_locked(&ex->obj, FILE_DIR, &w->entry);
		return 1;
	}
	if (!polled_since_locked(w, ex)) {
		poll_now_locked(ex);
		return 0;
	}
	return w->err = ex->lookup_error ? ex->lookup_error : ENOENT, 1;
}

int poll_lookup(fuse_req_t req, const char *eid, struct fuse_entry_param *e)
{
	struct execution_entry entry;
	struct execution *ex;
	struct waiter *w;

	core_lock();
	ex = objects_execution_locked(eid);
	if (ex && ex->known) {
		tree_fill_entry_locked(&ex->obj, FILE_DIR, e);
		core_unlock();
		return 0;
	}
	if ((ex && ex->missing_until_ms > http_now_ms()) ||
	    (!ex && missing_has_locked(eid, http_now_ms()))) {
		core_unlock();
		return -ENOENT;
	}
	core_unlock();
	w = park_waiter_new(req, PARK_REPLY_ENTRY, NULL, lookup_ready_locked);
	if (!w)
		return ENGINE_PARKED; /* answered */
	for (int tries = 0;; tries++) {
		index_read_execution(eid, &entry);
		core_lock();
		/* in memory when looked at, gone since (sweep.c): read it */
		if (!entry.in_table || objects_execution_locked(eid) || tries == 2)
			break;
		core_unlock();
	}
	ex = index_execution_locked(eid, &entry);
	if (!ex || ex->known) { /* another mount's run, from the index */
		if (ex)
			tree_fill_entry_locked(&ex->obj, FILE_DIR, e);
		core_unlock();
		free(w);
		return ex ? 0 : -ENOMEM;
	}
	w->target = ex;
	w->count = &ex->waiters;
	w->execution = ex;
	w->since_ms = http_now_ms();
	polled_since_locked(w, ex); /* marks it, before the poll it waits for */
	poll_now_locked(ex);
	ex->obj.handles++; /* kept in memory until park() has counted the waiter:
			    * the poll may end before (sweep.c) */
	core_unlock();
	park(w);
	core_lock();
	ex->obj.handles--;
	core_unlock();
	return ENGINE_PARKED;
}
