/* engine.c - objects, downloads, polling and parked FUSE requests. */
#include "engine.h"
#include "cache.h"
#include "fs.h"
#include "http.h"
#include "worker.h"
#include "log.h"
#include "params.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_BUCKETS 4096
#define STATUS_FRESH_MS 1000	/* a status younger than this is not asked again */
#define MISSING_CACHE_MS 10000	/* how long a 404 for an execution is believed */
#define POLL_FIRST_MS 500
#define POLL_MAX_MS 3000
#define POLL_FAILURES_MAX 3	/* failed status polls in a row that end a read */
#define RESULT_OUT_CAP (256u << 20)
/* Decoded bytes are written to the cache, and waiting readers woken, once
 * this many have gathered or the socket has nothing more for now. */
#define RESULT_FLUSH_BYTES (1u << 20)
/* The block size results report: what tools take as their read size. */
#define RESULT_READ_BLOCK (1024 * 1024)
/* Bytes of the next page kept in memory before its turn. */
#define AHEAD_CAP (1u << 20)

/* ---- state ---------------------------------------------------------------- */

static struct engine_config config;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct object **objects;
static unsigned object_count, object_alloc;
static struct object *buckets[HASH_BUCKETS];
static time_t mount_time;
static unsigned long long cache_bytes;	/* complete results on disk */
static int detached;	/* the mount is gone: nothing waits any more */

void engine_lock(void)
{
	pthread_mutex_lock(&lock);
}

void engine_unlock(void)
{
	pthread_mutex_unlock(&lock);
}

/* ---- parked requests ------------------------------------------------------ */

enum wait_kind { WAIT_READ, WAIT_OPEN_LATEST, WAIT_OPEN_STATUS, WAIT_LOOKUP, WAIT_WRITE };
enum wait_state { WAIT_NEW, WAIT_LISTED, WAIT_DONE };

struct waiter {
	struct waiter *prev, *next;
	fuse_req_t req;
	enum wait_kind kind;
	enum wait_state state;
	void *target;		/* what it waits on: a result, query or execution */
	long long since_ms;
	unsigned poll_mark;	/* the execution's poll_seq when it parked */
	int poll_marked;
	long long deadline_ms;	/* 0: none */
	int owned_by_request;	/* an HTTP request frees it (writes) */
	int interrupted;	/* interrupted while being parked */
	struct handle *handle;
	struct query *query;
	struct execution *execution;
	off_t off;
	size_t size;
	struct fuse_file_info fi;
	/* the reply, decided under the lock, sent after it */
	int ready;
	int err;
	int fd;
	struct cJSON *params;	/* execute: the parsed request, kept while preparing */
	char *data;		/* copied bytes when no descriptor could be had */
	off_t data_off;
	size_t data_len;
	struct fuse_entry_param entry;
};

static struct waiter waiters = {.prev = &waiters, .next = &waiters};

static int evaluate(struct waiter *w);

static void unlink_waiter(struct waiter *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->prev = w->next = NULL;
	if (w->kind == WAIT_READ) {
		struct result *r = w->target;

		r->waiters--;
	} else if (w->execution && (w->kind == WAIT_OPEN_STATUS || w->kind == WAIT_LOOKUP)) {
		w->execution->waiters--;
	}
}

static void link_waiter(struct waiter *w)
{
	w->next = &waiters;
	w->prev = waiters.prev;
	waiters.prev->next = w;
	waiters.prev = w;
	if (w->kind == WAIT_READ) {
		struct result *r = w->target;

		r->waiters++;
	} else if (w->execution && (w->kind == WAIT_OPEN_STATUS || w->kind == WAIT_LOOKUP)) {
		w->execution->waiters++;
	}
	w->state = WAIT_LISTED;
}

static void free_handle(struct handle *h);

/* Sends the decided reply. Lock not held. */
static void send_reply(struct waiter *w)
{
	if (w->err) {
		if (w->kind == WAIT_OPEN_LATEST || w->kind == WAIT_OPEN_STATUS) {
			free_handle(w->handle);
			w->handle = NULL;
		}
		fuse_reply_err(w->req, w->err);
		return;
	}
	switch (w->kind) {
	case WAIT_READ:
		if (w->data_len == 0 || w->data) {
			fuse_reply_buf(w->req, w->data, w->data_len);
			free(w->data);
			w->data = NULL;
		} else {
			struct fuse_bufvec buf = FUSE_BUFVEC_INIT(w->data_len);

			buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
			buf.buf[0].fd = w->fd;
			buf.buf[0].pos = w->data_off;
			fuse_reply_data(w->req, &buf, FUSE_BUF_SPLICE_MOVE);
		}
		if (w->fd >= 0)
			close(w->fd);
		break;
	case WAIT_OPEN_LATEST:
	case WAIT_OPEN_STATUS:
		w->fi.fh = (uint64_t)(uintptr_t)w->handle;
		if (fuse_reply_open(w->req, &w->fi) == -ENOENT)
			engine_release(w->handle); /* the opener went away */
		break;
	case WAIT_LOOKUP:
		fuse_reply_entry(w->req, &w->entry);
		break;
	case WAIT_WRITE:
		fuse_reply_write(w->req, w->size);
		break;
	}
}

/* Takes ready waiters off the list (lock held) onto *out. */
static void take(struct waiter *w, struct waiter **out)
{
	unlink_waiter(w);
	w->state = WAIT_DONE;
	w->next = *out;
	*out = w;
}

/* Collects every listed waiter on target that can be answered now. */
static void collect(void *target, struct waiter **out)
{
	struct waiter *w, *next;

	for (w = waiters.next; w != &waiters; w = next) {
		next = w->next;
		if (w->target == target && evaluate(w))
			take(w, out);
	}
}

/* Answers the collected waiters (lock not held). */
static void send_all(struct waiter *list)
{
	while (list) {
		struct waiter *w = list;

		list = w->next;
		/* waits for an interrupt handler running on w, and stops new ones */
		fuse_req_interrupt_func(w->req, NULL, NULL);
		send_reply(w);
		if (!w->owned_by_request)
			free(w);
	}
}

/* libfuse calls this with the request's own lock held. Only a listed waiter
 * is answered here (libfuse holds a reference on that path); one still being
 * parked is only marked, and park() answers it once libfuse lets go. */
static void on_interrupt(fuse_req_t req, void *data)
{
	struct waiter *w = data;
	enum wait_kind kind;
	struct handle *handle;

	engine_lock();
	if (w->state == WAIT_DONE) {
		engine_unlock();
		return;
	}
	if (w->state == WAIT_NEW) {
		w->state = WAIT_DONE;
		w->interrupted = 1;
		engine_unlock();
		return;
	}
	unlink_waiter(w);
	w->state = WAIT_DONE;
	kind = w->kind;
	handle = w->handle;
	engine_unlock();
	/* off the list, w is ours alone */
	if (kind == WAIT_OPEN_LATEST || kind == WAIT_OPEN_STATUS)
		free_handle(handle);
	fuse_reply_err(req, EINTR);
	free(w);
}

/* Parks w, or answers it at once when it is ready. Lock not held on entry or
 * return. Returns 1 when w was listed (still waiting); a write's waiter is
 * never freed here. Writes take no interrupt: their request goes out
 * whatever happens, and an EINTR would invite a retry, a second paid run. */
static int park(struct waiter *w)
{
	struct waiter *ready = NULL;

	w->state = WAIT_NEW;
	if (!w->since_ms)
		w->since_ms = http_now_ms();
	if (config.timeout && (w->kind == WAIT_READ || w->kind == WAIT_OPEN_LATEST))
		w->deadline_ms = w->since_ms + (long long)config.timeout * 1000;
	if (w->kind != WAIT_WRITE)
		fuse_req_interrupt_func(w->req, on_interrupt, w);
	engine_lock();
	if (w->interrupted) {
		engine_unlock();
		fuse_req_interrupt_func(w->req, NULL, NULL);
		if (w->kind == WAIT_OPEN_LATEST || w->kind == WAIT_OPEN_STATUS)
			free_handle(w->handle);
		fuse_reply_err(w->req, EINTR);
		free(w);
		return 0;
	}
	if (detached) {
		w->err = ENOTCONN;
		w->ready = 1;
		w->state = WAIT_DONE;
		w->next = NULL;
		ready = w;
	} else if (w->kind != WAIT_WRITE && evaluate(w)) {
		w->state = WAIT_DONE;
		w->next = NULL;
		ready = w;
	} else {
		link_waiter(w);
	}
	engine_unlock();
	send_all(ready);
	return ready == NULL;
}

static struct waiter *waiter_new(fuse_req_t req, enum wait_kind kind, void *target)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w) {
		fuse_reply_err(req, ENOMEM);
		return NULL;
	}
	w->req = req;
	w->kind = kind;
	w->target = target;
	w->fd = -1;
	return w;
}

/* ---- objects -------------------------------------------------------------- */

static unsigned hash_id(enum object_type type, const char *id)
{
	unsigned h = 2166136261u ^ (unsigned)type;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % HASH_BUCKETS;
}

static struct object *find_object(enum object_type type, const char *id)
{
	struct object *o;

	for (o = buckets[hash_id(type, id)]; o; o = o->hash_next)
		if (o->type == type && strcmp(o->id, id) == 0)
			return o;
	return NULL;
}

static int add_object(struct object *o, enum object_type type, const char *id)
{
	unsigned h;

	if (object_count == object_alloc) {
		unsigned grown = object_alloc ? object_alloc * 2 : 256;
		struct object **table = realloc(objects, grown * sizeof(*table));

		if (!table)
			return -ENOMEM;
		objects = table;
		object_alloc = grown;
	}
	o->type = type;
	snprintf(o->id, sizeof(o->id), "%s", id);
	o->index = object_count;
	objects[object_count++] = o;
	h = hash_id(type, id);
	o->hash_next = buckets[h];
	buckets[h] = o;
	return 0;
}

struct query *engine_query(const char *qid, int create)
{
	struct query *q = (struct query *)find_object(OBJECT_QUERY, qid);

	if (q || !create)
		return q;
	q = calloc(1, sizeof(*q));
	if (!q || add_object(&q->obj, OBJECT_QUERY, qid)) {
		free(q);
		return NULL;
	}
	return q;
}

struct execution *engine_execution(const char *eid)
{
	return (struct execution *)find_object(OBJECT_EXECUTION, eid);
}

static struct execution *execution_new(const char *eid)
{
	struct execution *ex = engine_execution(eid);

	if (ex)
		return ex;
	ex = calloc(1, sizeof(*ex));
	if (!ex || add_object(&ex->obj, OBJECT_EXECUTION, eid)) {
		free(ex);
		return NULL;
	}
	for (int f = 0; f < FORMAT_COUNT; f++) {
		struct result *r = &ex->results[f];
		int fd;

		r->ex = ex;
		r->format = (enum result_format)f;
		r->fd = -1;
		buffer_init(&r->out, RESULT_OUT_CAP);
		fd = cache_result_open(eid, r->format, &r->size, &r->last_used);
		if (fd >= 0) {
			r->complete = 1;
			cache_bytes += (unsigned long long)r->size;
			close(fd);
		} else {
			r->size = 0;
		}
	}
	return ex;
}

struct object *engine_object_by_ino(fuse_ino_t ino, enum file_kind *kind)
{
	unsigned index;

	if (ino < INO_FIRST_OBJECT)
		return NULL;
	index = (unsigned)((ino - INO_FIRST_OBJECT) / INO_PER_OBJECT);
	if (index >= object_count)
		return NULL;
	*kind = (enum file_kind)((ino - INO_FIRST_OBJECT) % INO_PER_OBJECT);
	return objects[index];
}

fuse_ino_t engine_ino(const struct object *obj, enum file_kind kind)
{
	return INO_FIRST_OBJECT + (fuse_ino_t)obj->index * INO_PER_OBJECT + kind;
}

void engine_each(enum object_type type, void (*fn)(struct object *obj, void *data), void *data)
{
	for (unsigned i = 0; i < object_count; i++) {
		struct object *o = objects[i];

		if (o->type != type)
			continue;
		if (type == OBJECT_QUERY && !((struct query *)o)->listed)
			continue;
		if (type == OBJECT_EXECUTION && !((struct execution *)o)->known)
			continue;
		fn(o, data);
	}
}

int engine_valid_qid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 18 || name[0] == '0')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	return 1;
}

int engine_valid_eid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 64)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return !config.backend || !config.backend->ops->eid_valid || config.backend->ops->eid_valid(name);
}

static void set_string(char **field, const char *value)
{
	free(*field);
	*field = value ? strdup(value) : NULL;
}

/* ---- the index on disk ---------------------------------------------------- */

/* Index entries are written by the worker thread: their fsyncs never hold
 * the lock, delay an answer or a request. */
struct pending_entry {
	const char *kind;
	char name[72];
	char *text;
	struct pending_entry *next;
};

static struct pending_entry *pending_entries, **pending_tail = &pending_entries;
static int entries_now = 1; /* no worker thread: write at once */

static void write_entries(void *data)
{
	struct pending_entry *list, *e;

	(void)data;
	engine_lock();
	list = pending_entries;
	pending_entries = NULL;
	pending_tail = &pending_entries;
	engine_unlock();
	while ((e = list)) {
		list = e->next;
		cache_put_entry(e->kind, e->name, e->text, strlen(e->text));
		free(e->text);
		free(e);
	}
}

/* Queues an entry (lock held); takes text. */
static void put_entry(const char *kind, const char *name, char *text)
{
	struct pending_entry *e = entries_now ? NULL : malloc(sizeof(*e));

	if (!e) {
		cache_put_entry(kind, name, text, strlen(text));
		free(text);
		return;
	}
	e->kind = kind;
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->text = text;
	e->next = NULL;
	if (!pending_entries)
		worker_submit(write_entries, NULL);
	*pending_tail = e;
	pending_tail = &e->next;
}

static void persist_execution(struct execution *ex)
{
	cJSON *doc = cJSON_CreateObject();
	char *text;

	if (!doc)
		return;
	cJSON_AddStringToObject(doc, "query_id", ex->query_id);
	cJSON_AddStringToObject(doc, "state", exec_state_word(ex->state));
	if (ex->result_id[0])
		cJSON_AddStringToObject(doc, "result_id", ex->result_id);
	if (ex->error)
		cJSON_AddStringToObject(doc, "error", ex->error);
	if (ex->document)
		cJSON_AddStringToObject(doc, "status", ex->document);
	if (ex->ended_at)
		cJSON_AddNumberToObject(doc, "ended_at", (double)ex->ended_at);
	text = cJSON_PrintUnformatted(doc);
	if (text)
		put_entry("executions", ex->obj.id, text);
	cJSON_Delete(doc);
}

static void persist_query(struct query *q)
{
	cJSON *doc = cJSON_CreateObject();
	char *text;

	if (!doc)
		return;
	cJSON_AddStringToObject(doc, "last", q->last);
	cJSON_AddStringToObject(doc, "latest", q->latest);
	cJSON_AddNumberToObject(doc, "latest_checked", (double)q->latest_checked);
	if (q->error)
		cJSON_AddStringToObject(doc, "error", q->error);
	text = cJSON_PrintUnformatted(doc);
	if (text)
		put_entry("queries", q->obj.id, text);
	cJSON_Delete(doc);
}

static const char *json_string(const cJSON *doc, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, name);

	return cJSON_IsString(item) ? item->valuestring : NULL;
}

static void copy_id(char *out, size_t outlen, const char *id, int (*valid)(const char *))
{
	snprintf(out, outlen, "%s", id && valid(id) ? id : "");
}

static void load_execution(const char *eid, void *data)
{
	char *text = cache_get_entry("executions", eid);
	cJSON *doc = text ? cJSON_Parse(text) : NULL;
	struct execution *ex;
	const char *qid = json_string(doc, "query_id");
	const cJSON *ended;

	(void)data;
	if (doc && engine_valid_eid(eid) && qid && engine_valid_qid(qid) && (ex = execution_new(eid))) {
		ex->known = 1;
		snprintf(ex->query_id, sizeof(ex->query_id), "%s", qid);
		ex->state = exec_state_from_word(json_string(doc, "state"));
		copy_id(ex->result_id, sizeof(ex->result_id), json_string(doc, "result_id"),
			engine_valid_eid);
		set_string(&ex->error, json_string(doc, "error"));
		set_string(&ex->document, json_string(doc, "status"));
		ended = cJSON_GetObjectItemCaseSensitive(doc, "ended_at");
		if (cJSON_IsNumber(ended) && ended->valuedouble > 0 && ended->valuedouble < 1e15)
			ex->ended_at = (time_t)ended->valuedouble;
	} else {
		log_info("ignoring unreadable index entry executions/%s", eid);
	}
	cJSON_Delete(doc);
	free(text);
}

static void load_query(const char *qid, void *data)
{
	char *text = cache_get_entry("queries", qid);
	cJSON *doc = text ? cJSON_Parse(text) : NULL;
	const cJSON *checked = cJSON_GetObjectItemCaseSensitive(doc, "latest_checked");
	struct query *q;

	(void)data;
	if (doc && engine_valid_qid(qid) && (q = engine_query(qid, 1))) {
		q->listed = 1;
		copy_id(q->last, sizeof(q->last), json_string(doc, "last"), engine_valid_eid);
		copy_id(q->latest, sizeof(q->latest), json_string(doc, "latest"), engine_valid_eid);
		q->latest_checked = cJSON_IsNumber(checked) ? (time_t)checked->valuedouble : 0;
		set_string(&q->error, json_string(doc, "error"));
	} else {
		log_info("ignoring unreadable index entry queries/%s", qid);
	}
	cJSON_Delete(doc);
	free(text);
}

/* ---- turning replies into errors ----------------------------------------- */

/* One line per failure: the path involved, the request, the HTTP status and
 * the API's own message. URLs never hold the key; headers are never logged. */
static void log_failure(const char *path, const struct http_request *req, const struct api_error *err)
{
	char status[32] = "";

	if (req->shutdown)
		return; /* not a fault: the mount is going away */
	if (err->http_status)
		snprintf(status, sizeof(status), "HTTP %ld: ", err->http_status);
	log_error("%s: %s %s: %s%s%s", path, req->method, req->url, status, err->message,
		  err->err == EACCES && (err->http_status == 401 || err->http_status == 403 ||
					  err->http_status == 404)
			  ? " (the API key is missing, rejected or lacks access)" : "");
}

/* The outcome of a finished request as an api_error; 0 for a 2xx. */
static int request_outcome(struct http_request *req, struct api_error *err)
{
	struct api_response resp = {req->status, req->headers.data, req->response.data,
				    req->response.len};

	memset(err, 0, sizeof(*err));
	if (req->aborted)
		return api_fail(err, req->abort_errno, req->status, "%s", strerror(req->abort_errno));
	if (req->shutdown)
		return api_fail(err, ENOTCONN, 0, "%s", req->error);
	if (req->transport_failed)
		return api_fail(err, EIO, 0, "API unreachable: %s", req->error);
	if (req->status >= 200 && req->status < 300)
		return 0;
	config.backend->ops->error_parse(config.backend, (enum api_call)req->call, &resp, err);
	return -err->err;
}

static struct api_response response_of(struct http_request *req)
{
	struct api_response resp = {req->status, req->headers.data, req->response.data,
				    req->response.len};

	return resp;
}

/* An HTTP request for api; what names the path it serves, for log lines. */
static struct http_request *request_from(struct api_request *api, enum api_call call,
					 const char *what_fmt, ...) __attribute__((format(printf, 3, 4)));

static struct http_request *request_from(struct api_request *api, enum api_call call,
					 const char *what_fmt, ...)
{
	struct http_request *req = http_request_new(api->method, api->url, api->body);
	va_list ap;

	if (req) {
		req->starts_run = api->starts_run;
		req->call = (int)call;
		va_start(ap, what_fmt);
		vsnprintf(req->what, sizeof(req->what), what_fmt, ap);
		va_end(ap);
	}
	api_request_free(api);
	return req;
}

/* ---- downloads ------------------------------------------------------------ */

static void download_request_done(struct http_request *req);

static int download_submit(struct result *r, struct api_request *api);

static void drop_ahead(struct result *r);

static void fail_download(struct result *r, const struct api_error *err)
{
	struct waiter *ready = NULL;

	drop_ahead(r);
	cache_result_abandon(r->ex->obj.id, r->format);
	engine_lock();
	r->downloading = 0;
	r->error = err->err ? err->err : EIO;
	set_string(&r->error_message, err->message);
	if (r->decoder) {
		r->decoder->ops->free(r->decoder);
		r->decoder = NULL;
	}
	buffer_free(&r->out);
	if (r->opens == 0 && r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
		r->size = 0;
		r->ended = 0;
	}
	collect(r, &ready);
	engine_unlock();
	send_all(ready);
}

/* Keeps complete results under cache_size (lock held): the least recently
 * opened go first; a result someone has open, or being downloaded, stays. */
static void evict_over_cap(void)
{
	while (cache_bytes > config.cache_size) {
		struct result *oldest = NULL;

		for (unsigned i = 0; i < object_count; i++) {
			struct execution *ex = (struct execution *)objects[i];

			if (objects[i]->type != OBJECT_EXECUTION)
				continue;
			for (int f = 0; f < FORMAT_COUNT; f++) {
				struct result *r = &ex->results[f];

				if (r->complete && r->opens == 0 && !r->downloading &&
				    (!oldest || r->last_used < oldest->last_used))
					oldest = r;
			}
		}
		if (!oldest)
			return; /* everything left is in use */
		cache_result_remove(oldest->ex->obj.id, oldest->format);
		log_debug("evicted executions/%s/results.%s (%lld bytes)", oldest->ex->obj.id,
			  result_format_ext(oldest->format), (long long)oldest->size);
		cache_bytes -= (unsigned long long)oldest->size;
		oldest->complete = 0;
		oldest->ended = 0;
		oldest->size = 0;
	}
}

/* Writes what the decoder produced; bytes an earlier attempt at the same page
 * wrote already are skipped, so a retried page resumes where it broke off. */
static int flush_out(struct result *r)
{
	struct waiter *ready = NULL;
	off_t pos = r->page_start + r->attempt_bytes;
	size_t len = r->out.len, skip = 0;
	off_t have = r->size; /* only this thread changes it */

	if (len == 0)
		return 0;
	if (have > pos)
		skip = (size_t)(have - pos) < len ? (size_t)(have - pos) : len;
	for (size_t done = skip; done < len;) {
		ssize_t n = pwrite(r->fd, r->out.data + done, len - done, pos + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	r->attempt_bytes += (off_t)len;
	buffer_reset(&r->out);
	if (pos + (off_t)len > have) {
		engine_lock();
		r->size = pos + (off_t)len;
		if (r->waiters)
			collect(r, &ready);
		engine_unlock();
		send_all(ready);
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
		buffer_reset(&r->ahead_body);
}

static int ahead_data(struct http_request *req, const char *data, size_t len)
{
	struct result *r = req->data;

	if (!r)
		return -ECANCELED; /* dropped */
	if (r->ahead_body.len + len > AHEAD_CAP)
		return HTTP_PAUSE;
	return buffer_append(&r->ahead_body, data, len) ? -ENOMEM : 0;
}

static void ahead_done(struct http_request *req)
{
	struct result *r = req->data;

	if (r)
		r->ahead_done = 1; /* kept for its turn */
	else
		http_request_free(req);
}

static void ask_ahead(struct result *r, const char *current, char *url)
{
	struct api_request api = {.method = "GET", .url = url};
	struct http_request *req;

	if (!url)
		return;
	if (!backend_next_page_ok(config.backend, current, url)) {
		free(url); /* refused when its turn comes, before any request */
		return;
	}
	req = request_from(&api, CALL_RESULT, "executions/%s/results.%s", r->ex->obj.id,
			   result_format_ext(r->format));
	if (!req)
		return;
	req->data = r;
	req->on_attempt = ahead_attempt;
	req->on_data = ahead_data;
	req->on_done = ahead_done;
	buffer_init(&r->ahead_body, AHEAD_CAP);
	r->ahead = req;
	r->ahead_done = 0;
	http_submit(req);
}

/* Drops the page asked for ahead; a transfer under way ends itself. */
static void drop_ahead(struct result *r)
{
	struct http_request *req = r->ahead;

	if (!req)
		return;
	r->ahead = NULL;
	buffer_free(&r->ahead_body);
	if (r->ahead_done) {
		r->ahead_done = 0;
		http_request_free(req);
		return;
	}
	req->data = NULL;
	http_resume(req); /* a paused transfer must run to notice */
}

static void download_attempt(struct http_request *req);
static int download_data(struct http_request *req, const char *data, size_t len);
static void download_drained(struct http_request *req);

/* The page asked for ahead is the next one: it becomes the download's. */
static void take_ahead(struct result *r)
{
	struct http_request *req = r->ahead;
	int done = r->ahead_done, rc = 0;
	struct api_error err;

	download_attempt(req);
	if (r->ahead_body.len)
		rc = download_data(req, r->ahead_body.data, r->ahead_body.len);
	if (rc && !done) {
		err = r->abort_err;
		if (!err.err)
			api_fail(&err, -rc, 0, "cannot store the result: %s", strerror(-rc));
		drop_ahead(r);
		fail_download(r, &err);
		return;
	}
	r->ahead = NULL;
	r->ahead_done = 0;
	buffer_free(&r->ahead_body);
	req->on_attempt = download_attempt;
	req->on_data = download_data;
	req->on_drained = download_drained;
	req->on_done = download_request_done;
	if (!done) {
		http_resume(req);
		return;
	}
	if (rc) {
		req->aborted = 1;
		req->abort_errno = -rc;
	}
	download_request_done(req);
}

static void download_attempt(struct http_request *req)
{
	struct result *r = req->data;

	r->decoder->ops->page_begin(r->decoder);
	r->headers_checked = 0;
	r->attempt_bytes = 0;
	buffer_reset(&r->out);
}

static int download_data(struct http_request *req, const char *data, size_t len)
{
	struct result *r = req->data;
	struct api_error err;
	int rc;

	if (!r->headers_checked) {
		struct api_response resp = {req->status, req->headers.data, "", 0};
		const struct result_decoder_ops *ops = r->decoder->ops;

		r->headers_checked = 1;
		rc = ops->page_headers ? ops->page_headers(r->decoder, &resp, &err) : 0;
		if (rc)
			return r->abort_err = err, rc;
		if (ops->next_from_headers && !r->ahead)
			ask_ahead(r, req->url, ops->next_from_headers(r->decoder, &resp));
	}
	rc = r->decoder->ops->page_data(r->decoder, data, len, &r->out, &err);
	if (rc)
		return r->abort_err = err, rc;
	/* smaller writes at first: the first bytes reach their reader sooner */
	return r->out.len >= (r->size < (off_t)RESULT_FLUSH_BYTES ? RESULT_FLUSH_BYTES / 16
								  : RESULT_FLUSH_BYTES)
		       ? flush_out(r) : 0;
}

/* A failed write stays in r->out: the next flush, at the latest the page's
 * end, reports it. */
static void download_drained(struct http_request *req)
{
	flush_out(req->data);
}

static void commit_result(void *data);

static void finish_download(struct result *r)
{
	struct api_error err = {0};
	struct waiter *ready = NULL;
	int rc = r->decoder->ops->finish(r->decoder, &r->out, &err);

	drop_ahead(r); /* the headers named a page the end did not */
	if (!rc)
		rc = flush_out(r);
	if (rc) {
		if (!err.err)
			api_fail(&err, -rc, 0, "cannot store the result: %s", strerror(-rc));
		fail_download(r, &err);
		return;
	}
	engine_lock();
	r->decoder->ops->free(r->decoder);
	r->decoder = NULL;
	buffer_free(&r->out);
	/* readers have every byte: their EOF need not wait for the fsync */
	r->ended = 1;
	collect(r, &ready);
	engine_unlock();
	send_all(ready);
	worker_submit(commit_result, r); /* still `downloading` until it is done */
}

/* On the worker thread: the downloaded result goes into the cache for good. */
static void commit_result(void *data)
{
	struct result *r = data;
	struct api_error err = {0};
	struct waiter *ready = NULL;
	int rc = cache_result_commit(r->ex->obj.id, r->format, r->fd);

	if (rc) {
		api_fail(&err, -rc, 0, "cannot store the result: %s", strerror(-rc));
		fail_download(r, &err);
		return;
	}
	engine_lock();
	r->complete = 1;
	r->downloading = 0;
	r->last_used = time(NULL);
	cache_bytes += (unsigned long long)r->size;
	collect(r, &ready);
	if (r->opens == 0) {
		close(r->fd);
		r->fd = -1;
	}
	evict_over_cap();
	engine_unlock();
	log_debug("executions/%s/results.%s complete: %lld bytes", r->ex->obj.id,
		  result_format_ext(r->format), (long long)r->size);
	send_all(ready);
}

static void download_request_done(struct http_request *req)
{
	struct result *r = req->data;
	struct api_response resp = response_of(req);
	struct api_error err;
	char *next = NULL;
	int rc = request_outcome(req, &err);
	char path[128];

	if (rc && req->aborted && r->abort_err.err)
		err = r->abort_err; /* the decoder's own words */
	memset(&r->abort_err, 0, sizeof(r->abort_err));
	if (!rc)
		rc = r->decoder->ops->page_end(r->decoder, &resp, &r->out, &next, &err);
	if (!rc && (rc = flush_out(r)))
		api_fail(&err, -rc, 0, "cannot store the result: %s", strerror(-rc));
	if (!rc && next && !backend_next_page_ok(config.backend, req->url, next)) {
		rc = api_fail(&err, EIO, 0, "the next page link leaves this result (%s); refused",
			      backend_same_origin(config.backend, next) ? "another path"
									: "another host");
		free(next);
		next = NULL;
	}
	if (rc) {
		snprintf(path, sizeof(path), "executions/%s/results.%s", r->ex->obj.id,
			 result_format_ext(r->format));
		log_failure(path, req, &err);
	}
	http_request_free(req);
	if (rc) {
		free(next);
		fail_download(r, &err);
		return;
	}
	if (!next) {
		finish_download(r);
		return;
	}
	r->page_start += r->attempt_bytes;
	r->attempt_bytes = 0;
	if (r->ahead && strcmp(r->ahead->url, next) == 0) {
		free(next);
		take_ahead(r);
		return;
	}
	drop_ahead(r);
	{
		struct api_request api = {.method = "GET", .url = next};

		if (download_submit(r, &api)) {
			api_fail(&err, ENOMEM, 0, "out of memory");
			fail_download(r, &err);
		}
	}
}

static int download_submit(struct result *r, struct api_request *api)
{
	struct http_request *req = request_from(api, CALL_RESULT, "executions/%s/results.%s",
						 r->ex->obj.id, result_format_ext(r->format));

	if (!req)
		return -ENOMEM;
	req->data = r;
	req->on_attempt = download_attempt;
	req->on_data = download_data;
	req->on_drained = download_drained;
	req->on_done = download_request_done;
	http_submit(req);
	return 0;
}

/* Starts the one download of r (lock held). */
static void start_download(struct result *r)
{
	struct exec_info info = {0};
	struct api_request api = {0};
	int fd, rc;

	if (r->complete || r->downloading)
		return;
	fd = cache_result_begin(r->ex->obj.id, r->format);
	if (fd < 0) {
		r->error = -fd;
		set_string(&r->error_message, "cannot create a file in the cache directory");
		log_error("executions/%s: cannot create a cache file: %s", r->ex->obj.id, strerror(-fd));
		return;
	}
	if (r->fd >= 0)
		close(r->fd);
	r->fd = fd;
	r->size = 0;
	r->ended = 0;
	r->error = 0;
	r->page_start = 0;
	r->attempt_bytes = 0;
	buffer_init(&r->out, RESULT_OUT_CAP);
	r->decoder = config.backend->ops->decoder_new(config.backend, r->format);
	if (r->decoder)
		r->decoder->expect_rows = r->ex->document && config.backend->ops->expected_rows
					  ? config.backend->ops->expected_rows(r->ex->document) : -1;
	snprintf(info.execution_id, sizeof(info.execution_id), "%s", r->ex->obj.id);
	snprintf(info.query_id, sizeof(info.query_id), "%s", r->ex->query_id);
	snprintf(info.result_id, sizeof(info.result_id), "%s", r->ex->result_id);
	r->downloading = 1;
	rc = !r->decoder ? -ENOMEM : config.backend->ops->result_request(config.backend, &info, r->format, &api);
	if (!rc)
		rc = download_submit(r, &api);
	if (rc) {
		r->downloading = 0;
		r->error = -rc;
		log_error("executions/%s/results.%s: cannot start the download: %s", r->ex->obj.id,
			  result_format_ext(r->format), strerror(-rc));
		if (r->decoder)
			r->decoder->ops->free(r->decoder);
		r->decoder = NULL;
		buffer_free(&r->out);
		close(r->fd);
		r->fd = -1;
		cache_result_abandon(r->ex->obj.id, r->format);
		return;
	}
	log_debug("downloading executions/%s/results.%s", r->ex->obj.id, result_format_ext(r->format));
}

/* ---- status polling ------------------------------------------------------- */

struct poll_tick {
	struct execution *ex;
	int generation;
};

static void poll_fire(void *data, int cancelled);

static void schedule_poll(struct execution *ex, long delay_ms)
{
	struct poll_tick *tick = malloc(sizeof(*tick));

	if (!tick) {
		log_error("executions/%s: out of memory for a status poll", ex->obj.id);
		ex->poll_delay_ms = 0; /* the next reader's ensure_polling() tries again */
		return;
	}
	tick->ex = ex;
	tick->generation = ex->poll_generation;
	http_later(delay_ms, poll_fire, tick);
}

/* Keeps a poll coming (lock held): one poller per execution. */
static void ensure_polling(struct execution *ex)
{
	if (ex->poll_inflight || ex->poll_delay_ms)
		return;
	ex->poll_delay_ms = POLL_FIRST_MS;
	schedule_poll(ex, 0);
}

/* Asks for the status now (lock held), replacing a poll scheduled later. */
static void poll_now(struct execution *ex)
{
	if (ex->poll_inflight)
		return;
	ex->poll_generation++;
	if (!ex->poll_delay_ms)
		ex->poll_delay_ms = POLL_FIRST_MS;
	schedule_poll(ex, 0);
}

/* A poll begun from now on (lock held): now, or, when one is under way,
 * when the waiters are evaluated again at its end. */
static void want_fresh_poll(struct execution *ex)
{
	if (!ex->poll_inflight)
		poll_now(ex);
}

static int interest(struct execution *ex)
{
	int n = ex->waiters;

	for (int f = 0; f < FORMAT_COUNT; f++)
		n += ex->results[f].waiters;
	return n;
}

static void poll_done(struct http_request *req);
static void apply_info(struct execution *ex, struct exec_info *info);
static void state_changed(struct execution *ex, struct waiter **ready);

static void poll_fire(void *data, int cancelled)
{
	struct poll_tick *tick = data;
	struct execution *ex = tick->ex;
	struct api_request api = {0};
	struct http_request *req;
	struct exec_info info = {0};
	struct waiter *ready = NULL;
	int stale;

	engine_lock();
	stale = cancelled || tick->generation != ex->poll_generation || ex->poll_inflight;
	free(tick);
	if (stale) {
		engine_unlock();
		return;
	}
	if (config.backend->ops->status_local &&
	    config.backend->ops->status_local(config.backend, ex->obj.id, &info)) {
		ex->lookup_error = 0;
		ex->poll_failures = 0;
		apply_info(ex, &info);
		ex->poll_delay_ms = 0;
		ex->poll_done_ms = http_now_ms();
		ex->poll_done_seq = ++ex->poll_seq;
		state_changed(ex, &ready);
		engine_unlock();
		exec_info_free(&info);
		send_all(ready);
		return;
	}
	req = config.backend->ops->status_request(config.backend, ex->obj.id, &api) ? NULL
										 : request_from(&api, CALL_STATUS, "executions/%s/status", ex->obj.id);
	if (!req) {
		ex->poll_delay_ms = 0;
		engine_unlock();
		return;
	}
	ex->poll_inflight = 1;
	ex->poll_seq++;
	req->data = ex;
	req->on_done = poll_done;
	engine_unlock();
	http_submit(req);
}

/* Acts on a new state (lock held): downloads for readers, or their errors. */
static void state_changed(struct execution *ex, struct waiter **ready)
{
	for (int f = 0; f < FORMAT_COUNT; f++) {
		struct result *r = &ex->results[f];

		if ((ex->state == EXEC_SUCCESS || ex->state == EXEC_PARTIAL) && r->waiters)
			start_download(r);
		collect(r, ready);
	}
	collect(ex, ready);
}

static void apply_info(struct execution *ex, struct exec_info *info)
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
	if (info->query_id[0] && engine_valid_qid(info->query_id))
		snprintf(ex->query_id, sizeof(ex->query_id), "%s", info->query_id);
	if (info->result_id[0] && engine_valid_eid(info->result_id) &&
	    strcmp(info->result_id, ex->result_id) != 0) {
		snprintf(ex->result_id, sizeof(ex->result_id), "%s", info->result_id);
		changed = 1;
	}
	if (info->error_message)
		set_string(&ex->error, info->error_message);
	if (info->document) {
		free(ex->document);
		ex->document = info->document;
		info->document = NULL;
		ex->status_at_ms = http_now_ms();
	}
	if (changed && ex->state == EXEC_FAILURE)
		log_error("executions/%s: the run failed: %s", ex->obj.id, ex->error ? ex->error : "no message");
	if (changed && ex->query_id[0])
		persist_execution(ex);
}

static void poll_done(struct http_request *req)
{
	struct execution *ex = req->data;
	struct api_response resp = response_of(req);
	struct exec_info info = {0};
	struct api_error err;
	struct waiter *ready = NULL;
	int rc = request_outcome(req, &err);
	int generation;

	if (!rc)
		rc = config.backend->ops->status_parse(config.backend, &resp, &info, &err);
	engine_lock();
	if (rc && err.err == ENOENT && ex->known && req->status >= 500)
		err.err = EIO; /* redash's 500 means "unknown job" only for a job never seen: for
				* one that was running it is a server error, a failed poll */
	ex->poll_inflight = 0;
	ex->poll_done_seq = ex->poll_seq;
	ex->lookup_error = 0;
	ex->poll_failures = rc && (err.err == EIO || err.err == EAGAIN) ? ex->poll_failures + 1 : 0;
	if (!rc) {
		apply_info(ex, &info);
	} else if (err.err == ENOENT || (err.err == EINVAL && req->status == 400)) {
		if (!ex->known)
			ex->missing_until_ms = http_now_ms() + MISSING_CACHE_MS;
		ex->lookup_error = ENOENT;
	} else {
		char path[96];

		ex->lookup_error = err.err;
		snprintf(path, sizeof(path), "executions/%s/status", ex->obj.id);
		log_failure(path, req, &err);
	}
	ex->poll_done_ms = http_now_ms();
	generation = ex->poll_generation;
	state_changed(ex, &ready); /* may want a fresh poll at once */
	if (ex->poll_generation != generation) {
		/* it did (poll_now): that poll is the one chain; a second
		 * scheduled here would double the requests for good */
	} else if (!exec_state_is_terminal(ex->state) && interest(ex) &&
	    (ex->known || ex->lookup_error == EIO || ex->lookup_error == EAGAIN)) {
		schedule_poll(ex, ex->poll_delay_ms);
		ex->poll_delay_ms = ex->poll_delay_ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : ex->poll_delay_ms * 2;
	} else {
		ex->poll_delay_ms = 0;
	}
	engine_unlock();
	exec_info_free(&info);
	http_request_free(req);
	send_all(ready);
}

/* ---- latest --------------------------------------------------------------- */

/* A run this mount knows whose result is rid (lock held): redash names a
 * query's latest by result id, and the job that made it holds it already. */
static struct execution *execution_with_result(const char *rid)
{
	for (unsigned i = 0; rid[0] && i < object_count; i++) {
		struct execution *ex = (struct execution *)objects[i];

		if (objects[i]->type == OBJECT_EXECUTION && ex->known &&
		    (ex->state == EXEC_SUCCESS || ex->state == EXEC_PARTIAL) &&
		    strcmp(ex->result_id, rid) == 0)
			return ex;
	}
	return NULL;
}

static void latest_done(struct http_request *req)
{
	struct query *q = req->data;
	struct api_response resp = response_of(req);
	struct exec_info info = {0};
	struct api_error err;
	struct waiter *ready = NULL;
	struct execution *ex = NULL;
	int rc = request_outcome(req, &err);

	if (!rc)
		rc = config.backend->ops->latest_parse(config.backend, &resp, &info, &err);
	if (!rc && !engine_valid_eid(info.execution_id))
		rc = api_fail(&err, EIO, req->status, "the API named an invalid execution id");
	engine_lock();
	q->resolving = 0;
	if (!rc && !(ex = execution_with_result(info.result_id)))
		ex = execution_new(info.execution_id);
	if (ex) {
		if (!info.query_id[0])
			snprintf(info.query_id, sizeof(info.query_id), "%s", q->obj.id);
		if (!ex->known || !exec_state_is_terminal(ex->state))
			apply_info(ex, &info);
		snprintf(q->latest, sizeof(q->latest), "%s", ex->obj.id);
		q->latest_checked = time(NULL);
		q->listed = 1;
		q->resolve_error = 0;
		set_string(&q->error, NULL);
		persist_query(q);
	} else {
		if (!rc)
			api_fail(&err, ENOMEM, 0, "out of memory");
		if ((err.err == EIO || err.err == EAGAIN) && q->latest[0]) {
			/* the API is away: the copy we hold is the best answer */
			log_error("latest of queries/%s: %s; serving the cached result", q->obj.id,
				  err.message);
			q->resolve_error = 0;
		} else {
			char path[96];

			snprintf(path, sizeof(path), "queries/%s/latest", q->obj.id);
			log_failure(path, req, &err);
			q->resolve_error = err.err;
			set_string(&q->error, err.message);
			if (q->listed)
				persist_query(q);
		}
	}
	collect(q, &ready);
	engine_unlock();
	exec_info_free(&info);
	http_request_free(req);
	send_all(ready);
}

static void resolve_latest(struct query *q)
{
	struct api_request api = {0};
	struct http_request *req;

	if (q->resolving)
		return;
	if (config.backend->ops->latest_request(config.backend, q->obj.id, &api) ||
	    !(req = request_from(&api, CALL_LATEST, "queries/%s/latest", q->obj.id))) {
		q->resolve_error = ENOMEM;
		return;
	}
	q->resolving = 1;
	req->data = q;
	req->on_done = latest_done;
	http_submit(req);
}

/* ---- opening and reading -------------------------------------------------- */

static void bind_result(struct handle *h, struct result *r)
{
	h->result = r;
	r->opens++;
	if (r->complete && r->fd < 0) {
		off_t size;
		int fd = cache_result_open(r->ex->obj.id, r->format, &size, NULL);

		if (fd >= 0) {
			r->fd = fd;
			r->size = size;
		} else {
			r->complete = 0; /* removed behind our back */
			r->ended = 0;
			cache_bytes -= (unsigned long long)r->size;
			r->size = 0;
		}
	}
	r->last_used = time(NULL);
	if (!r->complete && r->fd < 0)
		r->size = 0, r->ended = 0;
	if (!r->downloading && r->error) {
		r->error = 0; /* a new open tries again */
		set_string(&r->error_message, NULL);
	}
}

/* The result a results.* or latest.* file reads, by format. */
static enum result_format format_of(enum file_kind kind)
{
	switch (kind) {
	case FILE_LATEST_JSON:
	case FILE_RESULTS_JSON:
		return FORMAT_JSON;
	case FILE_LATEST_NDJSON:
	case FILE_RESULTS_NDJSON:
		return FORMAT_NDJSON;
	default:
		return FORMAT_CSV;
	}
}

static int is_results_file(enum file_kind kind)
{
	return kind == FILE_RESULTS_CSV || kind == FILE_RESULTS_JSON || kind == FILE_RESULTS_NDJSON;
}

static int is_latest_file(enum file_kind kind)
{
	return kind == FILE_LATEST_CSV || kind == FILE_LATEST_JSON || kind == FILE_LATEST_NDJSON;
}

/* Every byte of the result is on local disk (its commit may be under way):
 * its size is final. */
static int result_whole(const struct result *r)
{
	return r->complete || r->ended;
}

/* Open flags for a result. Before it is complete: direct I/O, size 0, so
 * every tool reads to EOF. A complete executions/<eid>/results.* never
 * changes: the page cache, kept across opens. latest.* is one inode whose
 * bytes change from one execution to the next while older opens keep their
 * snapshot: it is read through the page cache only while every open that
 * does so reads the same result (an open bringing another one drops the
 * cached pages, or gets direct I/O while the older snapshot is still open
 * that way). Direct I/O opens never drop another open's cached pages. */
static void set_open_flags(struct handle *h, struct fuse_file_info *fi)
{
	struct result *r = h->result;
	struct query *q = (struct query *)h->obj;
	int f = r->format;

	fi->direct_io = 1;
	fi->keep_cache = 1;
	if (!result_whole(r))
		return;
	if (is_results_file(h->kind)) {
		fi->direct_io = 0;
		return;
	}
	if (q->cached_opens[f] && q->page_owner[f] != r)
		return;
	fi->direct_io = 0;
	fi->keep_cache = q->page_owner[f] == r;
	q->page_owner[f] = r;
	q->cached_opens[f]++;
	h->cached = 1;
}

static void fill_text(struct handle *h)
{
	free(h->text);
	h->text = engine_file_text(h->obj, h->kind, &h->text_len);
}

/* Out of descriptors (thousands of replies at once): copy the bytes while
 * the lock still keeps r->fd open. */
static void read_copy(struct waiter *w, struct result *r)
{
	ssize_t n;

	w->data = malloc(w->data_len);
	n = w->data ? pread(r->fd, w->data, w->data_len, w->data_off) : -1;
	if (n < 0) {
		log_error("executions/%s: reading the cached result: %s", r->ex->obj.id, strerror(w->data ? errno : ENOMEM));
		free(w->data);
		w->data = NULL;
		w->err = EIO;
		return;
	}
	w->data_len = (size_t)n;
}

/* Whether a status poll begun after w came has ended (lock held). A poll
 * under way when w came may have been sent before the state w asks about.
 * w's mark is taken at the first call. */
static int polled_since(struct waiter *w, struct execution *ex)
{
	if (!w->poll_marked) {
		w->poll_marked = 1;
		w->poll_mark = ex->poll_seq;
	}
	return (int)(ex->poll_done_seq - w->poll_mark) > 0;
}

static int evaluate_read(struct waiter *w)
{
	struct result *r = w->target;
	struct execution *ex = r->ex;
	int fresh;

	if (r->size > w->off) {
		/* its own descriptor: the reply goes out after the lock is dropped,
		 * when a restarted download may have closed r->fd */
		w->data_off = w->off;
		w->data_len = (size_t)(r->size - w->off) < w->size ? (size_t)(r->size - w->off) : w->size;
		w->fd = dup(r->fd);
		if (w->fd < 0)
			return read_copy(w, r), 1;
		return 1;
	}
	if (r->complete || r->ended)
		return 1; /* end of file */
	if (r->error)
		return w->err = r->error, 1;
	switch (ex->state) {
	case EXEC_SUCCESS:
	case EXEC_PARTIAL:
		start_download(r);
		if (r->error)
			return w->err = r->error, 1;
		break;
	case EXEC_FAILURE:
		return w->err = EIO, 1;
	case EXEC_CANCELLED:
		return w->err = ECANCELED, 1;
	case EXEC_EXPIRED:
		return w->err = ENODATA, 1;
	default:
		if (ex->lookup_error && ex->lookup_error != EIO && ex->lookup_error != EAGAIN)
			return w->err = ex->lookup_error, 1;
		/* a status that stays broken (HTML, garbage, 5xx after the HTTP
		 * retries) ends the wait: after POLL_FAILURES_MAX failed polls in
		 * a row, one of them begun after the reader came */
		fresh = polled_since(w, ex); /* marks when the reader came */
		if (ex->lookup_error && ex->poll_failures >= POLL_FAILURES_MAX && fresh)
			return w->err = ex->lookup_error, 1;
		ensure_polling(ex);
		break;
	}
	if (w->deadline_ms && http_now_ms() >= w->deadline_ms)
		return w->err = ETIMEDOUT, 1;
	return 0;
}

/* Whether w can be answered now; decides its reply (lock held). */
static int evaluate(struct waiter *w)
{
	struct query *q;
	struct execution *ex;

	switch (w->kind) {
	case WAIT_READ:
		return evaluate_read(w);
	case WAIT_OPEN_LATEST:
		q = w->target;
		if (w->deadline_ms && http_now_ms() >= w->deadline_ms)
			return w->err = ETIMEDOUT, 1;
		if (q->resolving)
			return 0;
		if (q->resolve_error || !q->latest[0])
			return w->err = q->resolve_error ? q->resolve_error : ENODATA, 1;
		ex = execution_new(q->latest);
		if (!ex)
			return w->err = ENOMEM, 1;
		bind_result(w->handle, &ex->results[format_of(w->handle->kind)]);
		set_open_flags(w->handle, &w->fi);
		return 1;
	case WAIT_OPEN_STATUS:
		ex = w->target;
		if (!polled_since(w, ex)) {
			want_fresh_poll(ex);
			return 0;
		}
		fill_text(w->handle);
		return 1;
	case WAIT_LOOKUP:
		ex = w->target;
		if (ex->known) {
			memset(&w->entry, 0, sizeof(w->entry));
			w->entry.ino = engine_ino(&ex->obj, FILE_DIR);
			w->entry.attr_timeout = 1.0;
			w->entry.entry_timeout = 1.0;
			engine_fill_attr(&ex->obj, FILE_DIR, NULL, &w->entry.attr);
			return 1;
		}
		if (!polled_since(w, ex)) {
			want_fresh_poll(ex);
			return 0;
		}
		return w->err = ex->lookup_error ? ex->lookup_error : ENOENT, 1;
	case WAIT_WRITE:
		return w->ready;
	}
	return 0;
}

void engine_lookup_execution(fuse_req_t req, const char *eid)
{
	struct execution *ex;
	struct waiter *w;

	engine_lock();
	ex = engine_execution(eid);
	if (ex && !ex->known && ex->missing_until_ms > http_now_ms()) {
		engine_unlock();
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!ex)
		ex = execution_new(eid);
	if (!ex) {
		engine_unlock();
		fuse_reply_err(req, ENOMEM);
		return;
	}
	engine_unlock();
	w = waiter_new(req, WAIT_LOOKUP, ex);
	if (!w)
		return;
	w->execution = ex;
	w->since_ms = http_now_ms();
	engine_lock();
	polled_since(w, ex); /* marks it, before the poll it waits for */
	if (!ex->known)
		poll_now(ex);
	engine_unlock();
	park(w);
}

/* Every open handle, so that those the kernel never releases (the mount
 * went away with files open) are freed at shutdown. */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handle handles = {.prev = &handles, .next = &handles};

static struct handle *handle_new(void)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_lock(&handles_lock);
	h->next = &handles;
	h->prev = handles.prev;
	handles.prev->next = h;
	handles.prev = h;
	pthread_mutex_unlock(&handles_lock);
	return h;
}

static void free_handle(struct handle *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&handles_lock);
	h->prev->next = h->next;
	h->next->prev = h->prev;
	pthread_mutex_unlock(&handles_lock);
	free(h->text);
	free(h->pending);
	free(h);
}

void engine_open(fuse_req_t req, struct object *obj, enum file_kind kind, struct fuse_file_info *fi)
{
	struct handle *h = handle_new();
	struct waiter *w;
	struct query *q;
	struct execution *ex;

	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->kind = kind;
	h->obj = obj;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	engine_lock();
	switch (kind) {
	case FILE_LATEST_CSV:
	case FILE_LATEST_JSON:
	case FILE_LATEST_NDJSON:
		q = (struct query *)obj;
		if (q->latest[0] && time(NULL) - q->latest_checked < (time_t)config.max_age) {
			ex = execution_new(q->latest);
			if (ex) {
				bind_result(h, &ex->results[format_of(kind)]);
				set_open_flags(h, fi);
				break;
			}
		}
		resolve_latest(q);
		engine_unlock();
		w = waiter_new(req, WAIT_OPEN_LATEST, q);
		if (!w) {
			free_handle(h);
			return;
		}
		w->handle = h;
		w->fi = *fi;
		park(w);
		return;
	case FILE_RESULTS_CSV:
	case FILE_RESULTS_JSON:
	case FILE_RESULTS_NDJSON:
		ex = (struct execution *)obj;
		bind_result(h, &ex->results[format_of(kind)]);
		set_open_flags(h, fi);
		break;
	case FILE_STATUS:
	case FILE_STATUS_JSON:
	case FILE_EXEC_ERROR:
		ex = (struct execution *)obj;
		/* a run learnt from latest.* has no status document yet; a failing
		 * API is not asked more than once a second however many readers */
		if ((!exec_state_is_terminal(ex->state) || !ex->document) &&
		    http_now_ms() - ex->status_at_ms > STATUS_FRESH_MS &&
		    http_now_ms() - ex->poll_done_ms > STATUS_FRESH_MS) {
			engine_unlock();
			w = waiter_new(req, WAIT_OPEN_STATUS, ex);
			if (!w) {
				free_handle(h);
				return;
			}
			w->execution = ex;
			w->handle = h;
			w->fi = *fi;
			w->since_ms = http_now_ms();
			engine_lock();
			polled_since(w, ex); /* marks it, before the poll it waits for */
			poll_now(ex);
			engine_unlock();
			park(w);
			return;
		}
		fill_text(h);
		break;
	case FILE_QUERY_ERROR:
		fill_text(h);
		break;
	default:
		break;
	}
	engine_unlock();
	fi->fh = (uint64_t)(uintptr_t)h;
	if (fuse_reply_open(req, fi) == -ENOENT)
		engine_release(h);
}

void engine_release(struct handle *h)
{
	struct query *unfinished = NULL;
	struct result *r;

	if (!h)
		return;
	engine_lock();
	if (h->kind == FILE_EXECUTE && h->pending_len && !h->write_error) {
		/* the last close of a JSON request whose end never came: nothing
		 * was sent. Not at flush: every close of a duplicate descriptor
		 * flushes (a `cat` writing the middle of a request in a { ...; }
		 * > execute group), and the request's end may still follow. */
		unfinished = (struct query *)h->obj;
		set_string(&unfinished->error, "the request is not valid JSON: it was closed before its end; nothing was sent");
	}
	r = h->result;
	if (h->cached)
		((struct query *)h->obj)->cached_opens[r->format]--;
	if (r && --r->opens == 0 && !r->downloading && r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
		if (!r->complete)
			r->size = 0, r->ended = 0; /* a failed download's bytes went with it */
		evict_over_cap();
	}
	engine_unlock();
	if (unfinished)
		log_error("queries/%s/execute: the request is not valid JSON (closed before its end); nothing was sent",
			  unfinished->obj.id);
	free_handle(h);
}

void engine_read(fuse_req_t req, struct handle *h, size_t size, off_t off)
{
	struct waiter *w;

	switch (h->kind) {
	case FILE_RESULTS_CSV:
	case FILE_RESULTS_JSON:
	case FILE_RESULTS_NDJSON:
	case FILE_LATEST_CSV:
	case FILE_LATEST_JSON:
	case FILE_LATEST_NDJSON:
		w = waiter_new(req, WAIT_READ, h->result);
		if (!w)
			return;
		w->handle = h;
		w->off = off;
		w->size = size;
		park(w);
		return;
	case FILE_EXECUTE:
		/* the transaction file: the run this open file started */
		if (h->execution_id[0]) {
			char line[80];
			size_t len = (size_t)snprintf(line, sizeof(line), "%s\n", h->execution_id);

			/* the id starts where the first read asks: Python seeks back
			 * to 0, a shell (exec 3<>execute; echo >&3; read <&3) cannot
			 * and reads on from the end of what it wrote */
			engine_lock();
			if (!h->id_read) {
				h->id_read = 1;
				h->id_base = off;
			}
			if (off >= h->id_base)
				off -= h->id_base;
			engine_unlock();

			if ((size_t)off >= len)
				fuse_reply_buf(req, NULL, 0);
			else
				fuse_reply_buf(req, line + off, len - (size_t)off < size ? len - (size_t)off : size);
			return;
		}
		fuse_reply_buf(req, NULL, 0);
		return;
	default:
		if (!h->text || (size_t)off >= h->text_len)
			fuse_reply_buf(req, NULL, 0);
		else
			fs_reply_copy(req, h->text + off,
				   h->text_len - (size_t)off < size ? h->text_len - (size_t)off : size);
		return;
	}
}

/* ---- execute and cancel --------------------------------------------------- */

static void finish_write(struct waiter *w, int err)
{
	struct waiter *ready = NULL;

	/* lock held */
	if (w->state == WAIT_LISTED) {
		if (err && w->handle)
			w->handle->write_error = err;
		w->err = err;
		w->ready = 1;
		take(w, &ready);
	}
	engine_unlock();
	if (ready)
		send_all(ready);
	cJSON_Delete(w->params);
	free(w); /* owned_by_request: whoever answered, it is freed here */
}

static void execute_done(struct http_request *req)
{
	struct waiter *w = req->data;
	struct query *q = w->query;
	struct api_response resp = response_of(req);
	struct exec_info info = {0};
	struct api_error err;
	struct execution *ex = NULL;
	int rc = request_outcome(req, &err);

	if (!rc)
		rc = config.backend->ops->execute_parse(config.backend, &resp, &info, &err);
	if (!rc && !engine_valid_eid(info.execution_id))
		rc = api_fail(&err, EIO, req->status, "the API named an invalid execution id");
	engine_lock();
	if (!rc && !(ex = execution_new(info.execution_id)))
		rc = api_fail(&err, ENOMEM, 0, "out of memory");
	if (!rc) {
		if (!info.query_id[0])
			snprintf(info.query_id, sizeof(info.query_id), "%s", q->obj.id);
		if (info.state == EXEC_UNKNOWN)
			info.state = EXEC_PENDING;
		apply_info(ex, &info); /* no status document yet: the first read asks */
		snprintf(q->last, sizeof(q->last), "%s", ex->obj.id);
		q->listed = 1;
		set_string(&q->error, NULL);
		persist_query(q);
		if (w->state == WAIT_LISTED)
			snprintf(w->handle->execution_id, sizeof(w->handle->execution_id), "%s", ex->obj.id);
		log_info("queries/%s/execute: started execution %s", q->obj.id, ex->obj.id);
	} else {
		char path[96];

		snprintf(path, sizeof(path), "queries/%s/execute", q->obj.id);
		log_failure(path, req, &err);
		set_string(&q->error, err.message);
		if (q->listed)
			persist_query(q);
	}
	exec_info_free(&info);
	http_request_free(req);
	finish_write(w, rc ? err.err : 0);
}

/* The reply to execute_prepare came: now the request that starts the run. */
static void execute_prepared(struct http_request *req)
{
	struct waiter *w = req->data;
	struct query *q = w->query;
	struct api_response resp = response_of(req);
	struct api_request api = {0};
	struct api_error err;
	struct http_request *http = NULL;
	int rc = request_outcome(req, &err);

	if (!rc)
		rc = config.backend->ops->execute_request(config.backend, q->obj.id, w->params, &resp,
							  &api, &err);
	if (!rc && !(http = request_from(&api, CALL_EXECUTE, "queries/%s/execute", q->obj.id)))
		rc = api_fail(&err, ENOMEM, 0, "out of memory");
	if (!rc) {
		http_request_free(req);
		http->data = w;
		http->on_done = execute_done;
		http_submit(http);
		return;
	}
	{
		char path[96];

		snprintf(path, sizeof(path), "queries/%s/execute", q->obj.id);
		if (err.http_status || req->transport_failed)
			log_failure(path, req, &err);
		else
			log_error("%s: %s", path, err.message);
	}
	http_request_free(req);
	engine_lock();
	set_string(&q->error, err.message);
	if (q->listed)
		persist_query(q);
	finish_write(w, err.err);
}

void engine_execute(fuse_req_t req, struct query *q, struct handle *h, const char *buf, size_t size)
{
	struct api_request api = {0};
	struct api_error err = {0};
	struct http_request *http;
	struct waiter *w;
	cJSON *params = NULL;
	char why[256];
	int prepare = config.backend->ops->execute_prepare != NULL;
	int rc;

	/* Buffered writers (Python's close(), stdio) resend data whose write()
	 * failed: on this file that could start a second paid run. */
	if (h->write_error) {
		fuse_reply_err(req, h->write_error);
		return;
	}
	/* One open file, one request. bash's echo and printf write each line
	 * on its own: a second write here is the rest of a request whose run
	 * has already started, never a request of its own. */
	engine_lock();
	rc = h->execution_id[0] != '\0';
	if (rc && params_blank(buf, size)) {
		/* the line break after a request that ended at the edge of a
		 * writer's buffer (stdio's 4 KiB): part of the request sent */
		engine_unlock();
		fuse_reply_write(req, size);
		return;
	}
	if (rc)
		snprintf(why, sizeof(why), "this open file already started execution %s: write the whole "
			 "request in one write(), e.g. echo '{\"days\": 7, \"chain\": \"x\"}' > execute",
			 h->execution_id);
	if (!rc && (h->pending_len || params_incomplete(buf, size))) {
		/* a JSON object says where it ends: its pieces, written one by
		 * one (stdio's buffer, os.write of parts), are one request */
		size_t len = h->pending_len + size;
		char *joined = len <= PARAMS_MAX_INPUT ? realloc(h->pending, len) : NULL;

		if (!joined) {
			free(h->pending);
			rc = -EINVAL;
			snprintf(why, sizeof(why), "the request is larger than 64 KiB");
		} else {
			memcpy(joined + h->pending_len, buf, size);
			if (params_incomplete(joined, len)) {
				h->pending = joined;
				h->pending_len = len;
				engine_unlock();
				fuse_reply_write(req, size);
				return;
			}
		}
		h->pending = NULL;
		h->pending_len = 0;
		engine_unlock();
		if (joined) {
			rc = params_parse(joined, len, &params, why, sizeof(why));
			free(joined);
		}
	} else {
		engine_unlock();
		if (!rc)
			rc = params_parse(buf, size, &params, why, sizeof(why));
	}
	if (rc)
		api_fail(&err, EINVAL, 0, "%s", why);
	else if (prepare && config.backend->ops->execute_prepare(config.backend, q->obj.id, &api))
		rc = api_fail(&err, ENOMEM, 0, "out of memory");
	else if (!prepare)
		rc = config.backend->ops->execute_request(config.backend, q->obj.id, params, NULL, &api, &err);
	if (rc || !(http = request_from(&api, prepare ? CALL_EXECUTE_PREPARE : CALL_EXECUTE,
					    "queries/%s/execute", q->obj.id))) {
		cJSON_Delete(params);
		if (!rc)
			api_fail(&err, ENOMEM, 0, "out of memory");
		log_error("queries/%s/execute: %s", q->obj.id, err.message);
		engine_lock();
		set_string(&q->error, err.message);
		h->write_error = err.err;
		engine_unlock();
		fuse_reply_err(req, err.err);
		return;
	}
	w = waiter_new(req, WAIT_WRITE, NULL);
	if (!w) {
		cJSON_Delete(params);
		http_request_free(http);
		return;
	}
	w->target = w;
	w->owned_by_request = 1;
	w->query = q;
	w->handle = h;
	w->size = size;
	w->params = params; /* freed with the waiter */
	http->data = w;
	http->on_done = prepare ? execute_prepared : execute_done;
	if (park(w)) {
		http_submit(http);
	} else {
		http_request_free(http);
		cJSON_Delete(w->params);
		free(w);
	}
}

static void cancel_done(struct http_request *req)
{
	struct waiter *w = req->data;
	struct execution *ex = w->execution;
	struct api_response resp = response_of(req);
	struct api_error err;
	int rc = request_outcome(req, &err);

	if (!rc)
		rc = config.backend->ops->cancel_parse(config.backend, &resp, &err);
	if (rc) {
		char path[96];

		snprintf(path, sizeof(path), "executions/%s/cancel", ex->obj.id);
		log_failure(path, req, &err);
	} else
		log_info("executions/%s/cancel: cancel requested", ex->obj.id);
	http_request_free(req);
	engine_lock();
	if (!rc)
		poll_now(ex);
	finish_write(w, rc ? err.err : 0);
}

void engine_cancel(fuse_req_t req, struct execution *ex, size_t size)
{
	struct api_request api = {0};
	struct http_request *http = NULL;
	struct waiter *w;
	int rc = config.backend->ops->cancel_request(config.backend, ex->obj.id, &api);

	if (!rc && !(http = request_from(&api, CALL_CANCEL, "executions/%s/cancel", ex->obj.id)))
		rc = -ENOMEM;
	if (rc) {
		log_error("executions/%s/cancel: %s", ex->obj.id,
			  rc == -EINVAL ? "a finished result has no run to cancel" : strerror(-rc));
		fuse_reply_err(req, -rc);
		return;
	}
	w = waiter_new(req, WAIT_WRITE, NULL);
	if (!w) {
		http_request_free(http);
		return;
	}
	w->target = w;
	w->owned_by_request = 1;
	w->execution = ex;
	w->size = size;
	http->data = w;
	http->on_done = cancel_done;
	if (park(w)) {
		http_submit(http);
	} else {
		http_request_free(http);
		free(w);
	}
}

/* ---- attributes and generated files -------------------------------------- */

/* The result a results.* or latest.* file shows: the open's snapshot, else
 * the one the kernel caches for the inode, else the latest known. */
static struct result *shown_result(struct object *obj, enum file_kind kind, struct handle *h)
{
	struct result *r = h ? h->result : NULL;

	if (!r) {
		if (is_results_file(kind)) {
			r = &((struct execution *)obj)->results[format_of(kind)];
		} else if (is_latest_file(kind)) {
			struct query *q = (struct query *)obj;
			int f = format_of(kind);
			struct execution *ex = q->latest[0] ? engine_execution(q->latest) : NULL;

			/* while opens read it through the page cache, the inode's
			 * size is theirs: the kernel bounds cached reads by it */
			if (q->cached_opens[f])
				r = q->page_owner[f];
			else if (ex)
				r = &ex->results[f];
		}
	}
	return r;
}

off_t engine_file_size(struct object *obj, enum file_kind kind, struct handle *h)
{
	struct result *r = shown_result(obj, kind, h);

	return r && result_whole(r) ? r->size : 0;
}

static char *text_line(const char *s, size_t *len)
{
	char *out;

	if (!s || !*s) {
		*len = 0;
		return strdup("");
	}
	*len = strlen(s);
	out = malloc(*len + 2);
	if (!out)
		return NULL;
	memcpy(out, s, *len);
	if (s[*len - 1] != '\n')
		out[(*len)++] = '\n';
	out[*len] = '\0';
	return out;
}

char *engine_file_text(struct object *obj, enum file_kind kind, size_t *len)
{
	struct execution *ex = (struct execution *)obj;
	struct query *q = (struct query *)obj;

	switch (kind) {
	case FILE_STATUS:
		return text_line(exec_state_word(ex->state), len);
	case FILE_STATUS_JSON:
		return text_line(ex->document, len);
	case FILE_EXEC_ERROR:
		if (ex->error)
			return text_line(ex->error, len);
		for (int f = 0; f < FORMAT_COUNT; f++)
			if (ex->results[f].error_message)
				return text_line(ex->results[f].error_message, len);
		return text_line(NULL, len);
	case FILE_QUERY_ERROR:
		return text_line(q->error, len);
	default:
		return text_line(NULL, len);
	}
}

void engine_fill_attr(struct object *obj, enum file_kind kind, struct handle *h, struct stat *st)
{
	struct execution *ex = (struct execution *)obj;
	struct query *q = (struct query *)obj;
	struct result *r;
	size_t len = 0;
	char *text;

	memset(st, 0, sizeof(*st));
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_nlink = 1;
	st->st_atime = st->st_mtime = st->st_ctime = mount_time;
	st->st_ino = obj ? engine_ino(obj, kind) : 0;
	switch (kind) {
	case FILE_DIR:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		break;
	case FILE_EXECUTE:
		st->st_mode = S_IFREG | 0644;
		break;
	case FILE_CANCEL:
		st->st_mode = S_IFREG | 0200;
		break;
	case FILE_LAST:
		st->st_mode = S_IFLNK | 0777;
		st->st_size = (off_t)(strlen("../../executions/") + strlen(q->last));
		break;
	case FILE_QUERY_LINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_size = (off_t)(strlen("../../queries/") + strlen(ex->query_id));
		break;
	case FILE_LATEST_CSV:
	case FILE_LATEST_JSON:
	case FILE_LATEST_NDJSON:
	case FILE_RESULTS_CSV:
	case FILE_RESULTS_JSON:
	case FILE_RESULTS_NDJSON:
		st->st_mode = S_IFREG | 0444;
		st->st_size = engine_file_size(obj, kind, h);
		/* when its run ended: make and rsync see a new result as newer */
		if ((r = shown_result(obj, kind, h)) && r->ex->ended_at)
			st->st_atime = st->st_mtime = st->st_ctime = r->ex->ended_at;
		/* tools size their reads by it (cmp, Python's open): a read is a
		 * round trip through the daemon while the result is downloading */
		st->st_blksize = RESULT_READ_BLOCK;
		break;
	default:
		st->st_mode = S_IFREG | 0444;
		text = engine_file_text(obj, kind, &len);
		free(text);
		st->st_size = (off_t)len;
		break;
	}
	st->st_blocks = (st->st_size + 511) / 512;
}

void engine_statfs(struct statvfs *st)
{
	unsigned long long blocks, used;

	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = 4096;
	st->f_namemax = 255;
	engine_lock();
	blocks = config.cache_size / st->f_frsize;
	used = (cache_bytes + st->f_frsize - 1) / st->f_frsize;
	st->f_blocks = blocks;
	st->f_bfree = st->f_bavail = blocks > used ? blocks - used : 0;
	st->f_files = object_count;
	engine_unlock();
}

/* ---- life cycle ----------------------------------------------------------- */

static void sweep_timeouts(void *data, int cancelled)
{
	struct waiter *w, *next, *ready = NULL;
	long long now = http_now_ms();

	(void)data;
	if (cancelled)
		return;
	engine_lock();
	for (w = waiters.next; w != &waiters; w = next) {
		next = w->next;
		if (w->deadline_ms && now >= w->deadline_ms && evaluate(w))
			take(w, &ready);
	}
	engine_unlock();
	send_all(ready);
	http_later(250, sweep_timeouts, NULL);
}

/* Whether the mount with our device number is still in the mount table. */
static int still_mounted(void)
{
	char line[4096], field[40];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int found = 0;

	if (!f)
		return 1;
	snprintf(field, sizeof(field), " %s ", config.mount_dev);
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ' '); /* after the mount id */

		p = p ? strchr(p + 1, ' ') : NULL; /* after the parent id */
		found = p && strncmp(p, field, strlen(field)) == 0;
	}
	fclose(f);
	return found;
}

/* Parked requests end with ENOTCONN (lock not held). */
static void end_all_waiters(void)
{
	struct waiter *w, *next, *ready = NULL;

	engine_lock();
	for (w = waiters.next; w != &waiters; w = next) {
		next = w->next;
		w->err = ENOTCONN;
		w->ready = 1;
		take(w, &ready);
	}
	engine_unlock();
	send_all(ready);
}

/* A lazy unmount (umount -l, fusermount3 -uz) leaves the daemon running for
 * as long as files stay open: readers parked here would wait for ever. The
 * watcher notices the mount is gone and ends them, so the last file closes
 * and the daemon exits. */
static void watch_mount(void *data, int cancelled)
{
	(void)data;
	if (cancelled)
		return;
	if (!still_mounted()) {
		log_info("the mount is gone (lazy unmount): ending waiting reads");
		engine_lock();
		detached = 1;
		engine_unlock();
		end_all_waiters();
		return;
	}
	http_later(500, watch_mount, NULL);
}

void engine_init(const struct engine_config *cfg)
{
	config = *cfg;
	mount_time = time(NULL);
	if (worker_start())
		log_error("no background thread: cache writes happen in line");
	else
		entries_now = 0;
	cache_list_entries("executions", load_execution, NULL);
	cache_list_entries("queries", load_query, NULL);
	engine_lock();
	evict_over_cap(); /* cache_size may be smaller than last time */
	engine_unlock();
	if (config.timeout)
		http_later(250, sweep_timeouts, NULL);
	if (config.mount_dev[0])
		http_later(500, watch_mount, NULL);
}

void engine_shutdown(void)
{
	struct waiter *w, *next, *ready = NULL;

	engine_lock();
	for (w = waiters.next; w != &waiters; w = next) {
		next = w->next;
		w->err = ENOTCONN;
		w->ready = 1;
		take(w, &ready);
	}
	engine_unlock();
	/* writes are freed by their requests, which http_stop() ends */
	while (ready) {
		w = ready;
		ready = w->next;
		fuse_req_interrupt_func(w->req, NULL, NULL);
		send_reply(w);
		if (!w->owned_by_request)
			free(w);
	}
	http_stop();
	engine_lock();
	entries_now = 1;
	engine_unlock();
	worker_stop(); /* commits and entries still queued are done first */
	write_entries(NULL);
	while (handles.next != &handles)
		free_handle(handles.next);
	for (unsigned i = 0; i < object_count; i++) {
		struct object *o = objects[i];

		if (o->type == OBJECT_QUERY) {
			free(((struct query *)o)->error);
		} else {
			struct execution *ex = (struct execution *)o;

			free(ex->error);
			free(ex->document);
			for (int f = 0; f < FORMAT_COUNT; f++) {
				struct result *r = &ex->results[f];

				if (r->fd >= 0)
					close(r->fd);
				if (r->decoder)
					r->decoder->ops->free(r->decoder);
				buffer_free(&r->out);
				if (r->ahead && r->ahead_done)
					http_request_free(r->ahead);
				buffer_free(&r->ahead_body);
				free(r->error_message);
			}
		}
		free(o);
	}
	free(objects);
	objects = NULL;
	object_count = object_alloc = 0;
}
