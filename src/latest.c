/* latest.c - the latest result of a query. */
#include "latest.h"
#include "apicall.h"
#include "http.h"
#include "index.h"
#include "log.h"
#include "objects.h"
#include "park.h"
#include "poll.h"
#include "reader.h"
#include "result.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A run this mount knows whose result is rid: redash names a query's latest
 * by result id, and the job that made it holds it already. */
static struct execution *execution_with_result_locked(const char *rid)
{
	unsigned count = objects_count_locked();

	for (unsigned i = 0; rid[0] && i < count; i++) {
		struct object *o = objects_at_locked(i);
		struct execution *ex = (struct execution *)o;

		if (o && o->type == OBJECT_EXECUTION && ex->known &&
		    (ex->state == EXEC_SUCCESS || ex->state == EXEC_PARTIAL) &&
		    strcmp(ex->result_id, rid) == 0)
			return ex;
	}
	return NULL;
}

static void latest_done(struct http_request *req)
{
	struct query *q = req->data;
	struct api_response resp;
	struct exec_info info = {0};
	struct api_error err;
	struct waiter *ready = NULL;
	struct execution *ex = NULL;
	struct execution_entry entry = {.in_table = 1};
	int rc = apicall_outcome(req, &resp, &err);

	if (!rc)
		rc = core_config.backend->ops->latest_parse(core_config.backend, &resp, &info, &err);
	if (!rc && !tree_valid_eid(info.execution_id))
		rc = api_fail(&err, EIO, req->status, "the API named an invalid execution id");
	if (!rc)
		index_read_execution(info.execution_id, &entry);
	core_lock();
	q->resolving = 0;
	if (!rc && !(ex = execution_with_result_locked(info.result_id)))
		ex = index_execution_locked(info.execution_id, &entry);
	index_execution_entry_free(&entry);
	if (ex) {
		if (!info.query_id[0])
			snprintf(info.query_id, sizeof(info.query_id), "%s", q->obj.id);
		if (!ex->known || !exec_state_is_terminal(ex->state))
			poll_apply_status_locked(ex, &info);
		snprintf(q->latest, sizeof(q->latest), "%s", ex->obj.id);
		q->latest_checked = time(NULL);
		q->listed = 1;
		q->resolve_error = 0;
		core_set_string(&q->error, NULL);
		index_put_query_locked(q);
	} else {
		if (!rc)
			api_fail(&err, ENOMEM, 0, "out of memory");
		if ((err.err == EIO || err.err == EAGAIN) && q->latest[0]) {
			/* the API is away: the copy we hold is the best answer */
			log_error("latest of queries/%s: %s; serving the cached result", q->obj.id,
				  err.message);
			q->resolve_error = 0;
		} else {
			apicall_log_failure(req, &err);
			q->resolve_error = err.err;
			if (err.err == ENODATA && !q->latest[0]) {
				char text[sizeof(err.message) + 320];

				/* never run: say how to start one */
				snprintf(text, sizeof(text), "%s: start a run with `echo > queries/%s/execute` "
					 "(parameters: `echo days=7 > queries/%s/execute`)", err.message,
					 q->obj.id, q->obj.id);
				core_set_string(&q->error, text);
			} else {
				core_set_string(&q->error, err.message);
			}
			if (q->listed)
				index_put_query_locked(q);
		}
	}
	park_wake_locked(q, &ready);
	core_unlock();
	exec_info_free(&info);
	http_request_free(req);
	park_send(ready);
}

static void resolve_locked(struct query *q)
{
	struct api_request api = {0};
	struct http_request *req;

	if (q->resolving)
		return;
	if (core_config.backend->ops->latest_request(core_config.backend, q->obj.id, &api) ||
	    !(req = apicall_new(&api, CALL_LATEST, "queries/%s/latest", q->obj.id))) {
		q->resolve_error = ENOMEM;
		return;
	}
	q->resolving = 1;
	req->data = q;
	req->on_done = latest_done;
	http_submit(req);
}

/* A whole open (not stream/) bound to a result not whole yet waits on the
 * result from now on, as an open of results.* does (lock held). */
static int wait_whole_locked(struct waiter *w)
{
	struct result *r = w->handle->result;

	if (reader_open_now_locked(w->handle))
		return 1;
	park_retarget_locked(w, r, &r->waiters);
	w->ready = reader_whole_ready_locked;
	return reader_whole_ready_locked(w);
}

static int open_ready_locked(struct waiter *w)
{
	struct query *q = w->target;
	struct execution *ex;

	if (w->deadline_ms && http_now_ms() >= w->deadline_ms) {
		core_set_string(&q->error, "a read of latest.* waited for the API's answer until "
					   "timeout and gave up (ETIMEDOUT): read again to keep waiting");
		log_info("queries/%s/latest: the wait ended after %u s (timeout)", q->obj.id,
			 core_config.timeout);
		return w->err = ETIMEDOUT, 1;
	}
	if (q->resolving)
		return 0;
	if (q->resolve_error || !q->latest[0])
		return w->err = q->resolve_error ? q->resolve_error : ENODATA, 1;
	ex = objects_execution_new_locked(q->latest, NULL);
	if (!ex)
		return w->err = ENOMEM, 1;
	reader_bind_locked(w->handle, &ex->results[tree_kind(w->handle->kind)->format]);
	return wait_whole_locked(w);
}

int latest_open(fuse_req_t req, struct query *q, struct handle *h, struct fuse_file_info *fi,
		void (*drop)(struct handle *h))
{
	enum result_format format = tree_kind(h->kind)->format;
	struct execution *ex = NULL;
	struct waiter *w;

	core_lock();
	if (q->latest[0] && time(NULL) - q->latest_checked < (time_t)core_config.max_age)
		ex = objects_execution_new_locked(q->latest, NULL);
	if (ex) {
		/* a fresh answer: opened as that run's results.* is */
		reader_bind_locked(h, &ex->results[format]);
		core_unlock();
		return reader_open(req, h, fi, drop);
	}
	resolve_locked(q);
	core_unlock();
	w = reader_open_waiter(req, q, open_ready_locked, h, drop, fi);
	if (w)
		park(w);
	return ENGINE_PARKED;
}
