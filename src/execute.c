/* execute.c - starting and cancelling runs. */
#include "execute.h"
#include "apicall.h"
#include "http.h"
#include "index.h"
#include "log.h"
#include "objects.h"
#include "params.h"
#include "park.h"
#include "poll.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The API has answered the write w's request made: its answer, decided in
 * the same hold of the lock as what the request changed. A write is never
 * interrupted; once the mount has ended it (shutdown), nothing is left but
 * to free it. */
static void answer_write_locked(struct waiter *w, int err, struct waiter **ready)
{
	if (w->state != WAIT_LISTED)
		return;
	if (err && w->handle)
		w->handle->write_error = err;
	w->err = err;
	w->done = 1;
	park_take_locked(w, ready);
}

/* Sends the answer (lock not held) and frees w, which its request owns. */
static void end_write(struct waiter *w, struct waiter *ready)
{
	park_send(ready);
	cJSON_Delete(w->params);
	free(w);
}


static int write_ready_locked(struct waiter *w)
{
	return w->done;
}

/* The query's error file says why; persisted when the query is listed. */
static void query_failed_locked(struct query *q, const char *message)
{
	core_set_string(&q->error, message);
	if (q->listed)
		index_put_query_locked(q);
}

static void execute_done(struct http_request *req)
{
	struct waiter *w = req->data, *ready = NULL;
	struct query *q = w->query;
	struct api_response resp;
	struct exec_info info = {0};
	struct api_error err;
	struct execution *ex = NULL;
	struct execution_entry entry = {.in_table = 1};
	int rc = apicall_outcome(req, &resp, &err);

	if (!rc)
		rc = core_config.backend->ops->execute_parse(core_config.backend, &resp, &info, &err);
	if (!rc && !tree_valid_eid(info.execution_id))
		rc = api_fail(&err, EIO, req->status, "the API named an invalid execution id");
	if (!rc)
		index_read_execution(info.execution_id, &entry);
	core_lock();
	if (!rc && !(ex = index_execution_locked(info.execution_id, &entry)))
		rc = api_fail(&err, ENOMEM, 0, "out of memory");
	if (!rc) {
		if (!info.query_id[0])
			snprintf(info.query_id, sizeof(info.query_id), "%s", q->obj.id);
		if (info.state == EXEC_UNKNOWN)
			info.state = EXEC_PENDING;
		poll_apply_status_locked(ex, &info); /* no status document yet: the first read asks */
		if (core_config.prefetch)
			poll_prefetch_locked(ex, core_config.prefetch, &ready);
		snprintf(q->last, sizeof(q->last), "%s", ex->obj.id);
		q->last_at = core_wall_ms();
		q->listed = 1;
		core_set_string(&q->error, NULL);
		index_put_query_locked(q);
		if (w->state == WAIT_LISTED)
			snprintf(w->handle->execution_id, sizeof(w->handle->execution_id), "%s", ex->obj.id);
		log_info("queries/%s/execute: started execution %s", q->obj.id, ex->obj.id);
	} else {
		apicall_log_failure(req, &err);
		query_failed_locked(q, err.message);
	}
	answer_write_locked(w, rc ? err.err : 0, &ready);
	core_unlock();
	exec_info_free(&info);
	http_request_free(req);
	end_write(w, ready);
}

/* The reply to execute_prepare came: now the request that starts the run. */
static void execute_prepared(struct http_request *req)
{
	struct waiter *w = req->data, *ready = NULL;
	struct query *q = w->query;
	struct api_response resp;
	struct api_request api = {0};
	struct api_error err;
	struct http_request *http = NULL;
	int rc = apicall_outcome(req, &resp, &err);

	if (!rc)
		rc = core_config.backend->ops->execute_request(core_config.backend, q->obj.id, w->params,
							       &resp, &api, &err);
	if (!rc && !(http = apicall_new(&api, CALL_EXECUTE, "queries/%s/execute", q->obj.id)))
		rc = api_fail(&err, ENOMEM, 0, "out of memory");
	if (!rc) {
		http_request_free(req);
		http->data = w;
		http->on_done = execute_done;
		http_submit(http);
		return;
	}
	if (err.http_status || req->transport_failed)
		apicall_log_failure(req, &err);
	else
		log_error("%s: %s", req->what, err.message);
	http_request_free(req);
	core_lock();
	query_failed_locked(q, err.message);
	answer_write_locked(w, err.err, &ready);
	core_unlock();
	end_write(w, ready);
}

/* Parks w and sends http, whose on_done answers it; or, when the mount is
 * gone and w was answered at once, drops both. */
static int send_write(struct waiter *w, struct http_request *http)
{
	if (park(w)) {
		http_submit(http);
	} else {
		http_request_free(http);
		cJSON_Delete(w->params);
		free(w);
	}
	return ENGINE_PARKED;
}

/* Takes the bytes of one write; *params is set when they end a request.
 * Returns 0 (params set, or the write is a piece taken whole: *taken),
 * or -EINVAL with why. */
static int take_request(struct handle *h, const char *buf, size_t size, cJSON **params, int *taken,
			char *why, size_t whylen)
{
	int rc;

	core_lock();
	if (h->execution_id[0]) {
		core_unlock();
		/* the line break after a request that ended at the edge of a
		 * writer's buffer (stdio's 4 KiB): part of the request sent */
		if (params_blank(buf, size))
			return *taken = 1, 0;
		snprintf(why, whylen, "this open file already started execution %s: write the whole "
			 "request in one write(), e.g. echo '{\"days\": 7, \"chain\": \"x\"}' > execute",
			 h->execution_id);
		return -EINVAL;
	}
	if (h->pending_len || params_incomplete(buf, size)) {
		/* a JSON object says where it ends: its pieces, written one by
		 * one (stdio's buffer, os.write of parts), are one request */
		size_t len = h->pending_len + size;
		char *joined = len <= PARAMS_MAX_INPUT ? realloc(h->pending, len) : NULL;

		if (!joined) {
			free(h->pending);
			h->pending = NULL;
			h->pending_len = 0;
			core_unlock();
			snprintf(why, whylen, "the request is larger than 64 KiB");
			return -EINVAL;
		}
		memcpy(joined + h->pending_len, buf, size);
		if (params_incomplete(joined, len) && !params_piece(buf, size)) {
			/* a line ended inside the object: a silent 0 here would
			 * let `echo ... > execute && cat last/...` read an older run */
			free(joined);
			h->pending = NULL;
			h->pending_len = 0;
			core_unlock();
			snprintf(why, whylen, "the request is not valid JSON: the line ended before its "
				 "object did (a '}' missing?); nothing was sent");
			return -EINVAL;
		}
		if (params_incomplete(joined, len)) {
			h->pending = joined;
			h->pending_len = len;
			core_unlock();
			return *taken = 1, 0;
		}
		h->pending = NULL;
		h->pending_len = 0;
		core_unlock();
		rc = params_parse(joined, len, params, why, whylen);
		free(joined);
		return rc;
	}
	core_unlock();
	return params_parse(buf, size, params, why, whylen);
}

int execute_write(fuse_req_t req, struct handle *h, const char *buf, size_t size)
{
	const struct backend *b = core_config.backend;
	struct query *q = (struct query *)h->obj;
	struct api_request api = {0};
	struct api_error err = {0};
	struct http_request *http;
	struct waiter *w;
	cJSON *params = NULL;
	char why[256];
	int prepare = b->ops->execute_prepare != NULL;
	int rc, taken = 0;

	/* Buffered writers (Python's close(), stdio) resend data whose write()
	 * failed: on this file that could start a second paid run. */
	if (h->write_error)
		return -h->write_error;
	/* One open file, one request. bash's echo and printf write each line
	 * on its own: a second write here is the rest of a request whose run
	 * has already started, never a request of its own. */
	rc = take_request(h, buf, size, &params, &taken, why, sizeof(why));
	if (!rc && taken)
		return 0;
	if (rc)
		api_fail(&err, EINVAL, 0, "%s", why);
	else if (prepare && b->ops->execute_prepare(b, q->obj.id, &api))
		rc = api_fail(&err, ENOMEM, 0, "out of memory");
	else if (!prepare)
		rc = b->ops->execute_request(b, q->obj.id, params, NULL, &api, &err);
	if (rc || !(http = apicall_new(&api, prepare ? CALL_EXECUTE_PREPARE : CALL_EXECUTE,
					"queries/%s/execute", q->obj.id))) {
		cJSON_Delete(params);
		if (!rc)
			api_fail(&err, ENOMEM, 0, "out of memory");
		log_error("queries/%s/execute: %s", q->obj.id, err.message);
		core_lock();
		core_set_string(&q->error, err.message);
		h->write_error = err.err;
		core_unlock();
		return -err.err;
	}
	w = park_waiter_new(req, PARK_REPLY_WRITE, NULL, write_ready_locked);
	if (!w) {
		cJSON_Delete(params);
		http_request_free(http);
		return ENGINE_PARKED;
	}
	w->target = w;
	w->owned_by_request = 1;
	w->query = q;
	w->handle = h;
	w->size = size;
	w->params = params; /* freed with the waiter */
	http->data = w;
	http->on_done = prepare ? execute_prepared : execute_done;
	return send_write(w, http);
}

int execute_read(struct handle *h, size_t size, off_t off, char **data, size_t *len)
{
	char line[80];
	size_t n = 0;

	*data = NULL;
	*len = 0;
	core_lock();
	if (h->execution_id[0]) {
		n = (size_t)snprintf(line, sizeof(line), "%s\n", h->execution_id);
		/* the id starts where the first read asks: Python seeks back to
		 * 0, a shell (exec 3<>execute; echo >&3; read <&3) cannot and
		 * reads on from the end of what it wrote */
		if (!h->id_read) {
			h->id_read = 1;
			h->id_base = off;
		}
		if (off >= h->id_base)
			off -= h->id_base;
	}
	core_unlock();
	if ((size_t)off >= n)
		return 0;
	*len = n - (size_t)off < size ? n - (size_t)off : size;
	*data = malloc(*len);
	if (!*data)
		return -ENOMEM;
	memcpy(*data, line + off, *len);
	return 0;
}

void execute_release(struct handle *h)
{
	struct query *q = (struct query *)h->obj;
	int unfinished;

	core_lock();
	/* the last close of a JSON request whose end never came: nothing was
	 * sent. Not at flush: every close of a duplicate descriptor flushes (a
	 * `cat` writing the middle of a request in a { ...; } > execute group),
	 * and the request's end may still follow. */
	unfinished = h->pending_len && !h->write_error;
	if (unfinished)
		core_set_string(&q->error, "the request is not valid JSON: it was closed before its end; nothing was sent");
	core_unlock();
	if (unfinished)
		log_error("queries/%s/execute: the request is not valid JSON (closed before its end); nothing was sent",
			  q->obj.id);
}

static void cancel_done(struct http_request *req)
{
	struct waiter *w = req->data, *ready = NULL;
	struct execution *ex = w->execution;
	struct api_response resp;
	struct api_error err;
	int rc = apicall_outcome(req, &resp, &err);

	if (!rc)
		rc = core_config.backend->ops->cancel_parse(core_config.backend, &resp, &err);
	if (rc)
		apicall_log_failure(req, &err);
	else
		log_info("executions/%s/cancel: cancel requested", ex->obj.id);
	http_request_free(req);
	core_lock();
	if (!rc)
		poll_now_locked(ex);
	answer_write_locked(w, rc ? err.err : 0, &ready);
	core_unlock();
	end_write(w, ready);
}

int cancel_write(fuse_req_t req, struct execution *ex, size_t size)
{
	struct api_request api = {0};
	struct http_request *http = NULL;
	struct waiter *w;
	int rc = core_config.backend->ops->cancel_request(core_config.backend, ex->obj.id, &api);

	if (!rc && !(http = apicall_new(&api, CALL_CANCEL, "executions/%s/cancel", ex->obj.id)))
		rc = -ENOMEM;
	if (rc) {
		log_error("executions/%s/cancel: %s", ex->obj.id,
			  rc == -EINVAL ? "a finished result has no run to cancel" : strerror(-rc));
		return rc;
	}
	w = park_waiter_new(req, PARK_REPLY_WRITE, NULL, write_ready_locked);
	if (!w) {
		http_request_free(http);
		return ENGINE_PARKED;
	}
	w->target = w;
	w->owned_by_request = 1;
	w->execution = ex;
	w->size = size;
	http->data = w;
	http->on_done = cancel_done;
	return send_write(w, http);
}
