/* download.c - one result's download, page by page, into the cache. */
#include "download.h"
#include "apicall.h"
#include "cache.h"
#include "evict.h"
#include "http.h"
#include "log.h"
#include "park.h"
#include "result.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESULT_OUT_CAP (256u << 20)
/* Decoded bytes are written to the cache, and waiting readers woken, once
 * this many have gathered or the socket has nothing more for now. */
#define RESULT_FLUSH_BYTES (1u << 20)
/* Bytes of the next page kept in memory before its turn. */
#define AHEAD_CAP (1u << 20)

/* A download's own state, from download_run to its commit or failure:
 * engine thread only, then the worker's for the commit. Kept apart from the
 * result so that results at rest (most of them) hold none of it. */
struct download {
	char part[160];		/* its file in the cache directory, "" before */
	struct result_decoder *decoder;
	struct buffer out;
	off_t page_start;	/* file offset where the current page starts */
	off_t attempt_bytes;	/* bytes the current attempt has produced */
	int headers_checked;	/* the decoder has seen this attempt's headers */
	struct api_error abort_err; /* why the decoder stopped a page */
	struct http_request *ahead; /* the next page, asked for while this one streams */
	struct buffer ahead_body; /* its first bytes, kept until its turn */
	int ahead_done;		/* it ended before its turn */
};

static void drop_ahead(struct result *r);

/* The transfer is over: its decoder and buffers go (the file stays). */
static void download_free(struct result *r)
{
	drop_ahead(r);
	if (r->dl->decoder)
		r->dl->decoder->ops->free(r->dl->decoder);
	r->dl->decoder = NULL;
	buffer_free(&r->dl->out);
}

/* The download is over, committed or failed. */
static void download_end(struct result *r)
{
	free(r->dl);
	r->dl = NULL;
}

void download_discard(struct result *r)
{
	if (!r->dl)
		return;
	if (r->dl->ahead)
		http_request_free(r->dl->ahead); /* ended by http_stop(), kept for its turn */
	r->dl->ahead = NULL;
	buffer_free(&r->dl->ahead_body);
	download_free(r);
	download_end(r);
}

/* The download ended without the result: readers get err. A reader that
 * has the file open keeps the bytes it can still read. */
static void fail_download(struct result *r, const struct api_error *err)
{
	struct waiter *ready = NULL;
	int old = -1;

	download_free(r);
	cache_result_abandon(r->dl->part, r->ex->obj.id, r->format, r->lock_fd);
	download_end(r);
	r->lock_fd = -1;
	core_lock();
	r->error = err->err ? err->err : EIO;
	core_set_string(&r->error_message, err->message);
	if (r->opens == 0) {
		old = result_set_fd_locked(r, -1);
		r->size = 0;
		result_set_state_locked(r, RESULT_FAILED);
	} else {
		result_set_state_locked(r, r->state == RESULT_COMMITTING ? RESULT_UNKEPT : RESULT_FAILED);
	}
	park_wake_locked(r, &ready);
	core_unlock();
	if (old >= 0)
		close(old); /* the file is unlinked: this frees its blocks */
	park_send(ready);
}

/* Why a download stopped when the cache could not take its bytes (rc),
 * unless err already says why. */
static void store_error(struct api_error *err, int rc)
{
	if (!err->err)
		api_fail(err, -rc, 0, "cannot store the result: %s", strerror(-rc));
}

static void fail_store(struct result *r, int rc)
{
	struct api_error err = {0};

	store_error(&err, rc);
	fail_download(r, &err);
}

/* Writes what the decoder produced; bytes an earlier attempt at the same page
 * wrote already are skipped, so a retried page resumes where it broke off. */
static int flush_out(struct result *r)
{
	struct waiter *ready = NULL;
	off_t pos = r->dl->page_start + r->dl->attempt_bytes;
	size_t len = r->dl->out.len, skip = 0;
	off_t have = r->size; /* only this thread changes it while streaming */

	if (len == 0)
		return 0;
	if (have > pos)
		skip = (size_t)(have - pos) < len ? (size_t)(have - pos) : len;
	for (size_t done = skip; done < len;) {
		ssize_t n = pwrite(r->fd, r->dl->out.data + done, len - done, pos + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	r->dl->attempt_bytes += (off_t)len;
	buffer_reset(&r->dl->out);
	if (pos + (off_t)len > have) {
		core_lock();
		r->size = pos + (off_t)len;
		if (r->waiters)
			park_wake_locked(r, &ready);
		core_unlock();
		park_send(ready);
	}
	return 0;
}

/* ---- the next page, asked for while the current one streams -------------
 *
 * When a page's headers name the next page, it is requested at once, so the
 * API's time to answer it overlaps this page's transfer. Its first bytes wait
 * in memory (at most AHEAD_CAP), then its transfer is paused until its turn;
 * a next page that turns out different is dropped. */

static void ahead_attempt(struct http_request *req)
{
	struct result *r = req->data;

	if (r)
		buffer_reset(&r->dl->ahead_body);
}

static int ahead_data(struct http_request *req, const char *data, size_t len)
{
	struct result *r = req->data;

	if (!r)
		return -ECANCELED; /* dropped */
	if (r->dl->ahead_body.len + len > AHEAD_CAP)
		return HTTP_PAUSE;
	return buffer_append(&r->dl->ahead_body, data, len) ? -ENOMEM : 0;
}

static void ahead_done(struct http_request *req)
{
	struct result *r = req->data;

	if (r)
		r->dl->ahead_done = 1; /* kept for its turn */
	else
		http_request_free(req);
}

static struct http_request *page_request(struct result *r, struct api_request *api)
{
	return apicall_new(api, CALL_RESULT, "executions/%s/results.%s", r->ex->obj.id,
			   result_format_ext(r->format));
}

static void ask_ahead(struct result *r, const char *current, char *url)
{
	struct api_request api = {.method = "GET", .url = url};
	struct http_request *req;

	if (!url)
		return;
	if (!backend_next_page_ok(core_config.backend, current, url)) {
		free(url); /* refused when its turn comes, before any request */
		return;
	}
	req = page_request(r, &api);
	if (!req)
		return;
	req->data = r;
	req->on_attempt = ahead_attempt;
	req->on_data = ahead_data;
	req->on_done = ahead_done;
	buffer_init(&r->dl->ahead_body, AHEAD_CAP);
	r->dl->ahead = req;
	r->dl->ahead_done = 0;
	http_submit(req);
}

/* Drops the page asked for ahead; a transfer under way ends itself. */
static void drop_ahead(struct result *r)
{
	struct http_request *req = r->dl->ahead;

	if (!req)
		return;
	r->dl->ahead = NULL;
	buffer_free(&r->dl->ahead_body);
	if (r->dl->ahead_done) {
		r->dl->ahead_done = 0;
		http_request_free(req);
		return;
	}
	req->data = NULL;
	http_resume(req); /* a paused transfer must run to notice */
}

static void page_attempt(struct http_request *req);
static int page_data(struct http_request *req, const char *data, size_t len);
static void page_drained(struct http_request *req);
static void page_done(struct http_request *req);

static void follow(struct http_request *req, struct result *r)
{
	req->data = r;
	req->on_attempt = page_attempt;
	req->on_data = page_data;
	req->on_drained = page_drained;
	req->on_done = page_done;
}

/* The page asked for ahead is the next one: it becomes the download's. */
static void take_ahead(struct result *r)
{
	struct http_request *req = r->dl->ahead;
	int done = r->dl->ahead_done, rc = 0;
	struct api_error err;

	page_attempt(req);
	if (r->dl->ahead_body.len)
		rc = page_data(req, r->dl->ahead_body.data, r->dl->ahead_body.len);
	if (rc && !done) {
		err = r->dl->abort_err;
		store_error(&err, rc);
		fail_download(r, &err); /* drops the page ahead */
		return;
	}
	r->dl->ahead = NULL;
	r->dl->ahead_done = 0;
	buffer_free(&r->dl->ahead_body);
	follow(req, r);
	if (!done) {
		http_resume(req);
		return;
	}
	if (rc) {
		req->aborted = 1;
		req->abort_errno = -rc;
	}
	page_done(req);
}

static void page_attempt(struct http_request *req)
{
	struct result *r = req->data;

	r->dl->decoder->ops->page_begin(r->dl->decoder);
	r->dl->headers_checked = 0;
	r->dl->attempt_bytes = 0;
	buffer_reset(&r->dl->out);
}

static int page_data(struct http_request *req, const char *data, size_t len)
{
	struct result *r = req->data;
	struct api_error err;
	int rc;

	if (!r->dl->headers_checked) {
		struct api_response resp = {req->status, req->headers.data, "", 0};
		const struct result_decoder_ops *ops = r->dl->decoder->ops;

		r->dl->headers_checked = 1;
		rc = ops->page_headers ? ops->page_headers(r->dl->decoder, &resp, &err) : 0;
		if (rc)
			return r->dl->abort_err = err, rc;
		if (ops->next_from_headers && !r->dl->ahead)
			ask_ahead(r, req->url, ops->next_from_headers(r->dl->decoder, &resp));
	}
	rc = r->dl->decoder->ops->page_data(r->dl->decoder, data, len, &r->dl->out, &err);
	if (rc)
		return r->dl->abort_err = err, rc;
	/* smaller writes at first: the first bytes reach their reader sooner */
	return r->dl->out.len >= (r->size < (off_t)RESULT_FLUSH_BYTES ? RESULT_FLUSH_BYTES / 16
								  : RESULT_FLUSH_BYTES)
		       ? flush_out(r) : 0;
}

/* A failed write stays in r->dl->out: the next flush, at the latest the page's
 * end, reports it. */
static void page_drained(struct http_request *req)
{
	flush_out(req->data);
}

/* On the worker thread: the downloaded result goes into the cache for good. */
void download_completed(struct result *r, int fd, off_t size, const char *by)
{
	struct waiter *ready = NULL;
	int old, unused;

	core_lock();
	log_debug("executions/%s/results.%s complete: %lld bytes, %s", r->ex->obj.id,
		  result_format_ext(r->format), (long long)size, by);
	old = fd >= 0 ? result_set_fd_locked(r, fd) : -1;
	r->size = size;
	unused = result_committed_locked(r);
	evict_after_commit_locked();
	park_wake_locked(r, &ready);
	core_unlock(); /* r may leave memory from here (sweep.c) */
	if (old >= 0)
		close(old);
	if (unused >= 0)
		close(unused);
	park_send(ready);
}

static void commit(void *data)
{
	struct result *r = data;
	int rc = cache_result_commit(r->dl->part, r->ex->obj.id, r->format, r->fd, r->lock_fd);

	if (rc) {
		fail_store(r, rc);
		return;
	}
	download_end(r); /* its file is the result's now */
	r->lock_fd = -1;  /* released by the commit */
	download_completed(r, -1, r->size, "downloaded here");
}

static void finish(struct result *r)
{
	struct api_error err = {0};
	struct waiter *ready = NULL;
	int rc = r->dl->decoder->ops->finish(r->dl->decoder, &r->dl->out, &err);

	drop_ahead(r); /* the headers named a page the end did not */
	if (!rc)
		rc = flush_out(r);
	if (rc) {
		store_error(&err, rc);
		fail_download(r, &err);
		return;
	}
	download_free(r);
	core_lock();
	/* readers have every byte: their EOF need not wait for the fsync */
	result_set_state_locked(r, RESULT_COMMITTING);
	park_wake_locked(r, &ready);
	core_unlock();
	park_send(ready);
	if (worker_submit(commit, r))
		commit(r); /* no background thread: in line, no lock held */
}

static void page_done(struct http_request *req)
{
	struct result *r = req->data;
	struct api_response resp;
	struct api_error err;
	char *next = NULL;
	int rc = apicall_outcome(req, &resp, &err);

	if (rc && req->aborted && r->dl->abort_err.err)
		err = r->dl->abort_err; /* the decoder's own words */
	memset(&r->dl->abort_err, 0, sizeof(r->dl->abort_err));
	if (!rc)
		rc = r->dl->decoder->ops->page_end(r->dl->decoder, &resp, &r->dl->out, &next, &err);
	if (!rc && (rc = flush_out(r))) {
		memset(&err, 0, sizeof(err));
		store_error(&err, rc);
	}
	if (!rc && next && !backend_next_page_ok(core_config.backend, req->url, next)) {
		rc = api_fail(&err, EIO, 0, "the next page link leaves this result (%s); refused",
			      backend_same_origin(core_config.backend, next) ? "another path"
									 : "another host");
		free(next);
		next = NULL;
	}
	if (rc)
		apicall_log_failure(req, &err);
	http_request_free(req);
	if (rc) {
		free(next);
		fail_download(r, &err);
		return;
	}
	if (!next) {
		finish(r);
		return;
	}
	r->dl->page_start += r->dl->attempt_bytes;
	r->dl->attempt_bytes = 0;
	if (r->dl->ahead && strcmp(r->dl->ahead->url, next) == 0) {
		free(next);
		take_ahead(r);
		return;
	}
	drop_ahead(r);
	{
		struct api_request api = {.method = "GET", .url = next};

		if (!(req = page_request(r, &api))) {
			api_fail(&err, ENOMEM, 0, "out of memory");
			fail_download(r, &err);
			return;
		}
		follow(req, r);
		http_submit(req);
	}
}

void download_run(struct result *r, int lock_fd)
{
	const struct backend *b = core_config.backend;
	struct exec_info info = {0};
	struct api_request api = {0};
	struct http_request *req = NULL;
	struct api_error err;
	char *document = NULL;
	struct waiter *ready = NULL;
	int fd, rc, old;

	r->lock_fd = lock_fd;
	r->dl = calloc(1, sizeof(*r->dl));
	if (!r->dl) {
		cache_result_release(r->ex->obj.id, r->format, lock_fd);
		r->lock_fd = -1;
		core_lock();
		r->error = ENOMEM;
		core_set_string(&r->error_message, "out of memory for the download");
		result_set_state_locked(r, RESULT_FAILED);
		park_wake_locked(r, &ready);
		core_unlock();
		park_send(ready);
		return;
	}
	fd = cache_result_begin(r->ex->obj.id, r->format, lock_fd, r->dl->part, sizeof(r->dl->part));
	if (fd < 0) {
		log_error("executions/%s: cannot create a cache file: %s", r->ex->obj.id, strerror(-fd));
		api_fail(&err, -fd, 0, "cannot create a file in the cache directory");
		fail_download(r, &err);
		return;
	}
	core_lock();
	old = result_set_fd_locked(r, fd);
	r->size = 0;
	snprintf(info.execution_id, sizeof(info.execution_id), "%s", r->ex->obj.id);
	snprintf(info.query_id, sizeof(info.query_id), "%s", r->ex->query_id);
	snprintf(info.result_id, sizeof(info.result_id), "%s", r->ex->result_id);
	document = r->ex->document ? strdup(r->ex->document) : NULL;
	core_unlock();
	if (old >= 0)
		close(old); /* a failed download's, kept while it was open */
	r->dl->page_start = 0;
	r->dl->attempt_bytes = 0;
	buffer_init(&r->dl->out, RESULT_OUT_CAP);
	r->dl->decoder = b->ops->decoder_new(b, r->format);
	if (r->dl->decoder)
		r->dl->decoder->expect_rows = document && b->ops->expected_rows
					  ? b->ops->expected_rows(document) : -1;
	free(document);
	rc = !r->dl->decoder ? -ENOMEM : b->ops->result_request(b, &info, r->format, &api);
	if (!rc && !(req = page_request(r, &api)))
		rc = -ENOMEM;
	if (rc) {
		log_error("executions/%s/results.%s: cannot start the download: %s", r->ex->obj.id,
			  result_format_ext(r->format), strerror(-rc));
		api_fail(&err, -rc, 0, "cannot start the download: %s", strerror(-rc));
		fail_download(r, &err);
		return;
	}
	follow(req, r);
	log_debug("downloading executions/%s/results.%s", r->ex->obj.id, result_format_ext(r->format));
	http_submit(req);
}
