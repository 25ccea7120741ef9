/* stub.c - the HTTP engine, worker thread and libfuse replies, faked for
 * the engine's unit tests (see stub.h). Single-threaded. */
#include "stub.h"
#include "buffer.h"
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- libfuse's replies ---------------------------------------------------- */

struct fuse_req *stub_req(void)
{
	return calloc(1, sizeof(struct fuse_req));
}

void stub_req_free(struct fuse_req *req)
{
	if (req)
		free(req->data);
	free(req);
}

static void answered(fuse_req_t req, int err)
{
	req->answered++;
	req->err = err;
}

int fuse_reply_err(fuse_req_t req, int err)
{
	answered(req, err);
	return 0;
}

int fuse_reply_buf(fuse_req_t req, const char *buf, size_t size)
{
	answered(req, 0);
	free(req->data);
	req->data = malloc(size + 1);
	if (size)
		memcpy(req->data, buf, size);
	req->data[size] = '\0';
	req->len = size;
	return 0;
}

int fuse_reply_data(fuse_req_t req, struct fuse_bufvec *bufv, enum fuse_buf_copy_flags flags)
{
	struct fuse_buf *b = &bufv->buf[0];
	ssize_t n;

	(void)flags;
	answered(req, 0);
	free(req->data);
	req->data = malloc(b->size + 1);
	n = pread(b->fd, req->data, b->size, b->pos);
	req->len = n > 0 ? (size_t)n : 0;
	req->data[req->len] = '\0';
	return 0;
}

int fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
	answered(req, 0);
	req->fi = *fi;
	return 0;
}

int fuse_reply_entry(fuse_req_t req, const struct fuse_entry_param *e)
{
	answered(req, 0);
	req->entry = *e;
	return 0;
}

int fuse_reply_write(fuse_req_t req, size_t count)
{
	answered(req, 0);
	req->written = count;
	return 0;
}

void fuse_req_interrupt_func(fuse_req_t req, fuse_interrupt_func_t func, void *data)
{
	req->interrupt = func;
	req->interrupt_data = data;
}

/* ---- the HTTP engine -------------------------------------------------------- */

#define MAX_PENDING 256
#define MAX_TIMERS 1024

static struct http_request *pending[MAX_PENDING];
static int pending_count, submitted;

struct timer {
	long long due;
	void (*fn)(void *data, int cancelled);
	void *data;
};

static struct timer timers[MAX_TIMERS];
static int timer_count;
static long long now_ms = 1000000;

struct http_request *http_request_new(const char *method, const char *url, const char *body)
{
	struct http_request *req = calloc(1, sizeof(*req));

	req->method = method;
	req->url = strdup(url);
	req->body = body ? strdup(body) : NULL;
	buffer_init(&req->headers, 1 << 16);
	buffer_init(&req->response, 1 << 20);
	return req;
}

void http_request_free(struct http_request *req)
{
	if (!req)
		return;
	free(req->url);
	free(req->body);
	buffer_free(&req->headers);
	buffer_free(&req->response);
	free(req);
}

void http_submit(struct http_request *req)
{
	if (pending_count < MAX_PENDING)
		pending[pending_count++] = req;
	submitted++;
}

void http_resume(struct http_request *req)
{
	(void)req;
}

int http_later(long delay_ms, void (*fn)(void *data, int cancelled), void *data)
{
	if (timer_count == MAX_TIMERS)
		return -ENOMEM;
	timers[timer_count++] = (struct timer){now_ms + delay_ms, fn, data};
	return 0;
}

int http_on_engine_thread(void)
{
	return 1;
}

long long http_now_ms(void)
{
	return now_ms;
}

void http_stop(void)
{
	while (timer_count) {
		struct timer t = timers[0];

		memmove(timers, timers + 1, (size_t)--timer_count * sizeof(*timers));
		t.fn(t.data, 1);
	}
	while (pending_count) {
		struct http_request *req = pending[0];

		memmove(pending, pending + 1, (size_t)--pending_count * sizeof(*pending));
		req->transport_failed = 1;
		req->shutdown = 1;
		req->on_done(req);
	}
}

long long stub_now(void)
{
	return now_ms;
}

long long stub_next_timer(void)
{
	long long next = -1;

	for (int i = 0; i < timer_count; i++)
		if (next < 0 || timers[i].due < next)
			next = timers[i].due;
	return next;
}

/* Runs the earliest timer due by `until`; 0 when none is. */
static int run_one(long long until)
{
	int best = -1;
	struct timer t;

	for (int i = 0; i < timer_count; i++)
		if (timers[i].due <= until && (best < 0 || timers[i].due < timers[best].due))
			best = i;
	if (best < 0)
		return 0;
	t = timers[best];
	memmove(timers + best, timers + best + 1, (size_t)(timer_count - best - 1) * sizeof(*timers));
	timer_count--;
	if (t.due > now_ms)
		now_ms = t.due;
	t.fn(t.data, 0);
	return 1;
}

void stub_advance(long long ms)
{
	long long until = now_ms + ms;

	while (run_one(until))
		;
	now_ms = until;
}

void stub_run_due(void)
{
	while (run_one(now_ms))
		;
}

int stub_pending(void)
{
	return pending_count;
}

struct http_request *stub_request(int i)
{
	return i < pending_count ? pending[i] : NULL;
}

int stub_submitted(void)
{
	return submitted;
}

void stub_reset_count(void)
{
	submitted = 0;
}

static struct http_request *take(const char *url_part)
{
	for (int i = 0; i < pending_count; i++) {
		struct http_request *req = pending[i];

		if (strstr(req->url, url_part)) {
			memmove(pending + i, pending + i + 1, (size_t)(pending_count - i - 1) * sizeof(*pending));
			pending_count--;
			return req;
		}
	}
	return NULL;
}

int stub_answer(const char *url_part, long status, const char *headers, const char *body)
{
	struct http_request *req = take(url_part);
	size_t len = strlen(body);

	if (!req)
		return -1;
	req->attempts++;
	req->status = status;
	buffer_append_str(&req->headers, headers);
	if (req->on_attempt)
		req->on_attempt(req);
	if (req->on_data && status >= 200 && status < 300) {
		int rc = len ? req->on_data(req, body, len) : 0;

		if (rc < 0) {
			req->aborted = 1;
			req->abort_errno = -rc;
		} else if (req->on_drained) {
			req->on_drained(req);
		}
	} else {
		buffer_append(&req->response, body, len);
	}
	req->on_done(req);
	return 0;
}

int stub_fail(const char *url_part)
{
	struct http_request *req = take(url_part);

	if (!req)
		return -1;
	req->attempts++;
	req->transport_failed = 1;
	strcpy(req->error, "Connection refused");
	req->on_done(req);
	return 0;
}

/* ---- the worker thread ------------------------------------------------------ */

#define MAX_JOBS 256

static struct {
	void (*fn)(void *data);
	void *data;
} jobs[MAX_JOBS];
static int job_count, refuse;

int worker_start(void)
{
	return 0;
}

void worker_stop(void)
{
	stub_run_jobs();
}

int worker_submit(void (*fn)(void *data), void *data)
{
	if (refuse || job_count == MAX_JOBS)
		return -ESRCH;
	jobs[job_count].fn = fn;
	jobs[job_count].data = data;
	job_count++;
	return 0;
}

int stub_jobs(void)
{
	return job_count;
}

void stub_run_jobs(void)
{
	while (job_count) {
		void (*fn)(void *data) = jobs[0].fn;
		void *data = jobs[0].data;

		memmove(jobs, jobs + 1, (size_t)--job_count * sizeof(*jobs));
		fn(data);
	}
}

void stub_worker_refuse(int on)
{
	refuse = on;
}
