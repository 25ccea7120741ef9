/* http.c - one thread, one curl multi handle, a queue and timers. */
#include "http.h"
#include "log.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTTP_MAX_ATTEMPTS 6
#define HTTP_ERROR_BODY_CAP (256 * 1024)
#define HTTP_BODY_CAP (64u << 20)
#define HTTP_HEADERS_CAP (64 * 1024)
#define HTTP_MAX_RETRY_AFTER_MS 120000
#define HTTP_STREAM_BUFFER (512L * 1024)

struct timer {
	long long due_ms;
	void (*fn)(void *data, int cancelled);
	void *data;
	struct timer *next;
};

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	CURLM *multi;
	char *auth_header;
	char *ca_file;
	volatile int stop;
	int running;
	struct http_request *queue;	/* submitted, not yet added */
	struct http_request *retries;	/* waiting for their retry time */
	struct http_request *active;	/* in the multi handle */
	struct timer *timers;		/* sorted by due time */
	long long paused_until_ms;	/* after a 429: no new attempt before this */
} engine = {.lock = PTHREAD_MUTEX_INITIALIZER};

long long http_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int http_on_engine_thread(void)
{
	return engine.running && pthread_equal(pthread_self(), engine.thread);
}

struct http_request *http_request_new(const char *method, const char *url, const char *body)
{
	struct http_request *req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	req->method = method;
	req->url = strdup(url);
	req->body = body ? strdup(body) : NULL;
	if (!req->url || (body && !req->body)) {
		http_request_free(req);
		return NULL;
	}
	buffer_init(&req->headers, HTTP_HEADERS_CAP);
	buffer_init(&req->response, HTTP_BODY_CAP);
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

void http_resume(struct http_request *req)
{
	if (req->easy)
		curl_easy_pause(req->easy, CURLPAUSE_CONT);
}

static void wake(void)
{
	if (engine.multi)
		curl_multi_wakeup(engine.multi);
}

void http_submit(struct http_request *req)
{
	pthread_mutex_lock(&engine.lock);
	req->next = engine.queue;
	engine.queue = req;
	pthread_mutex_unlock(&engine.lock);
	wake();
}

int http_later(long delay_ms, void (*fn)(void *data, int cancelled), void *data)
{
	struct timer *t = malloc(sizeof(*t)), **pos;

	if (!t) {
		log_error("out of memory for a timer");
		return -ENOMEM;
	}
	t->due_ms = http_now_ms() + delay_ms;
	t->fn = fn;
	t->data = data;
	pthread_mutex_lock(&engine.lock);
	for (pos = &engine.timers; *pos && (*pos)->due_ms <= t->due_ms; pos = &(*pos)->next)
		;
	t->next = *pos;
	*pos = t;
	pthread_mutex_unlock(&engine.lock);
	wake();
	return 0;
}

static int response_is_2xx(struct http_request *req)
{
	return req->status >= 200 && req->status < 300;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct http_request *req = userdata;
	size_t len = size * nmemb;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a new response (after a 100 Continue, say): forget the last */
		buffer_reset(&req->headers);
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
	}
	if (buffer_append(&req->headers, data, len))
		return 0; /* too many header bytes: abort */
	return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct http_request *req = userdata;
	size_t len = size * nmemb;
	int rc;

	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
	if (req->on_data && response_is_2xx(req)) {
		req->got_data = 1;
		rc = req->on_data(req, data, len);
		if (rc == HTTP_PAUSE)
			return CURL_WRITEFUNC_PAUSE;
		if (rc) {
			req->aborted = 1;
			req->abort_errno = -rc;
			return CURL_WRITEFUNC_ERROR;
		}
		return len;
	}
	if (!response_is_2xx(req) && req->response.len + len > HTTP_ERROR_BODY_CAP)
		return len; /* an error body: the start is enough */
	if (buffer_append(&req->response, data, len)) {
		req->aborted = 1;
		req->abort_errno = EFBIG;
		return CURL_WRITEFUNC_ERROR;
	}
	return len;
}

static int start_attempt(struct http_request *req)
{
	CURL *easy = curl_easy_init();
	struct curl_slist *list = NULL, *grown;

	if (!easy)
		return -ENOMEM;
	req->easy = easy;
	req->status = 0;
	req->transport_failed = 0;
	req->aborted = 0;
	req->error[0] = '\0';
	buffer_reset(&req->headers);
	buffer_reset(&req->response);
	req->attempts++;
	if (req->on_attempt)
		req->on_attempt(req);

	grown = curl_slist_append(list, engine.auth_header);
	if (grown)
		list = grown;
	if (req->body) {
		grown = curl_slist_append(list, "Content-Type: application/json");
		if (grown)
			list = grown;
	}
	grown = curl_slist_append(list, "Expect:");
	if (grown)
		list = grown;
	req->header_list = list;

	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "execfs/" EXECFS_VERSION);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, req);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, req);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->error);
	if (req->on_data) /* a streamed result: fewer, bigger writes into the cache */
		curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, HTTP_STREAM_BUFFER);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, 15L);
	/* a server that sends nothing for a minute is treated as gone */
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L); /* never carry the key elsewhere */
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (engine.ca_file)
		curl_easy_setopt(easy, CURLOPT_CAINFO, engine.ca_file);
	if (strcmp(req->method, "GET") != 0)
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
	if (req->starts_run) {
		/* libcurl resends a request on its own when a reused connection
		 * turns out dead; for one that starts a paid run, never reuse */
		curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
	}
	if (req->body) {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body);
	} else if (strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");
	}
	curl_multi_add_handle(engine.multi, easy);
	req->next = engine.active;
	engine.active = req;
	log_debug("%s: %s %s (attempt %d)", req->what, req->method, req->url, req->attempts);
	return 0;
}

static void end_attempt(struct http_request *req)
{
	struct http_request **pos;

	for (pos = &engine.active; *pos; pos = &(*pos)->next)
		if (*pos == req) {
			*pos = req->next;
			break;
		}
	curl_multi_remove_handle(engine.multi, req->easy);
	curl_easy_cleanup(req->easy);
	curl_slist_free_all(req->header_list);
	req->easy = NULL;
	req->header_list = NULL;
	req->next = NULL;
}

/* Retry-After: delay-seconds or an HTTP-date; otherwise keep `fallback`. */
static long retry_after_ms(const char *value, long fallback)
{
	char text[64];
	size_t len;
	char *end;
	long seconds;

	while (*value == ' ' || *value == '\t')
		value++;
	len = strcspn(value, "\r\n");
	if (len >= sizeof(text))
		return fallback;
	memcpy(text, value, len);
	text[len] = '\0';
	seconds = strtol(text, &end, 10);
	if (end == text || seconds < 0) {
		time_t when = curl_getdate(text, NULL);

		if (when == -1)
			return fallback;
		seconds = when > time(NULL) ? (long)(when - time(NULL)) : 0;
	}
	return seconds * 1000 > HTTP_MAX_RETRY_AFTER_MS ? HTTP_MAX_RETRY_AFTER_MS : seconds * 1000;
}

/* Milliseconds until the retry, or -1 for no retry. */
/* Failures no retry can mend: the certificate is not trusted, the URL is bad.
 * (Not CURLE_UNSUPPORTED_PROTOCOL: a server that sent more than its
 * Content-Length leaves bytes on the kept connection, which the next request
 * reads as "HTTP/0.9"; a retry on another connection mends that.) */
static int lasting_failure(CURLcode code)
{
	switch (code) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_URL_MALFORMAT:
		return 1;
	default:
		return 0;
	}
}

static long retry_delay(struct http_request *req, CURLcode code)
{
	long delay = 500L << (req->attempts - 1);
	struct buffer *h = &req->headers;
	const char *ra;

	if (req->attempts >= HTTP_MAX_ATTEMPTS || req->aborted)
		return -1;
	if (code != CURLE_OK) {
		int never_sent = code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST;

		if (lasting_failure(code) || (req->starts_run && !never_sent))
			return -1;
		return delay;
	}
	if (req->status == 429 || (!req->starts_run && (req->status == 502 || req->status == 503 ||
							 req->status == 504))) {
		ra = h->data ? strcasestr(h->data, "\nretry-after:") : NULL;
		if (ra)
			delay = retry_after_ms(ra + 13, delay);
		return delay;
	}
	return -1;
}

static void finish(struct http_request *req, CURLcode code)
{
	long delay;

	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
	end_attempt(req);
	if (code != CURLE_OK) {
		req->transport_failed = 1;
		if (!req->error[0])
			snprintf(req->error, sizeof(req->error), "%s", curl_easy_strerror(code));
	}
	delay = retry_delay(req, code);
	if (code == CURLE_OK && req->status == 429) {
		/* the API's budget is the source's, not the request's: everyone waits */
		long long until = http_now_ms() + (delay >= 0 ? delay : 1000);

		if (until > engine.paused_until_ms)
			engine.paused_until_ms = until;
	}
	if (delay >= 0) {
		if (code != CURLE_OK)
			log_info("%s: %s %s: %s, retrying in %ld ms", req->what, req->method,
				 req->url, req->error, delay);
		else
			log_info("%s: %s %s: HTTP %ld, retrying in %ld ms", req->what, req->method,
				 req->url, req->status, delay);
		req->retry_at_ms = http_now_ms() + delay;
		req->next = engine.retries;
		engine.retries = req;
		return;
	}
	req->on_done(req);
}

static void run_due(void)
{
	long long now = http_now_ms();
	struct http_request **pos, *req, *ready = NULL;
	struct timer *due = NULL, **tail = &due, *t;

	pthread_mutex_lock(&engine.lock);
	while (engine.queue && now >= engine.paused_until_ms) {
		req = engine.queue;
		engine.queue = req->next;
		req->next = ready;
		ready = req;
	}
	while (engine.timers && engine.timers->due_ms <= now) {
		t = engine.timers;
		engine.timers = t->next;
		t->next = NULL;
		*tail = t;
		tail = &t->next;
	}
	pthread_mutex_unlock(&engine.lock);

	for (pos = &engine.retries; *pos;) {
		req = *pos;
		if (req->retry_at_ms <= now && now >= engine.paused_until_ms) {
			*pos = req->next;
			req->next = ready;
			ready = req;
		} else {
			pos = &req->next;
		}
	}
	while (ready) {
		req = ready;
		ready = req->next;
		if (start_attempt(req)) {
			req->transport_failed = 1;
			snprintf(req->error, sizeof(req->error), "cannot start a transfer");
			req->on_done(req);
		}
	}
	while (due) {
		t = due;
		due = t->next;
		t->fn(t->data, 0);
		free(t);
	}
}

static long next_wait_ms(void)
{
	long long now = http_now_ms(), next = now + 1000;
	long curl_timeout = -1;
	struct http_request *req;

	pthread_mutex_lock(&engine.lock);
	if (engine.queue)
		next = now > engine.paused_until_ms ? now : engine.paused_until_ms;
	if (engine.timers && engine.timers->due_ms < next)
		next = engine.timers->due_ms;
	pthread_mutex_unlock(&engine.lock);
	for (req = engine.retries; req; req = req->next) {
		long long at = req->retry_at_ms > engine.paused_until_ms ? req->retry_at_ms
									 : engine.paused_until_ms;

		if (at < next)
			next = at;
	}
	curl_multi_timeout(engine.multi, &curl_timeout);
	if (curl_timeout >= 0 && now + curl_timeout < next)
		next = now + curl_timeout;
	return next > now ? (long)(next - now) : 0;
}

/* The sockets have nothing more for now: streamed requests may hand on what
 * they gathered. */
static void drained(void)
{
	for (struct http_request *req = engine.active; req; req = req->next) {
		if (req->got_data && req->on_drained) {
			req->got_data = 0;
			req->on_drained(req);
		}
	}
}

static void fail_all(struct http_request *list)
{
	while (list) {
		struct http_request *req = list;

		list = req->next;
		req->next = NULL;
		req->transport_failed = 1;
		req->shutdown = 1;
		req->status = 0;
		snprintf(req->error, sizeof(req->error), "the filesystem is shutting down");
		req->on_done(req);
	}
}

static void *engine_main(void *arg)
{
	int still_running;
	CURLMsg *msg;
	int left;

	(void)arg;
	while (!engine.stop) {
		run_due();
		curl_multi_perform(engine.multi, &still_running);
		while ((msg = curl_multi_info_read(engine.multi, &left))) {
			struct http_request *req;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
			finish(req, msg->data.result);
		}
		drained();
		curl_multi_poll(engine.multi, NULL, 0, (int)next_wait_ms(), NULL);
	}

	/* Shutting down: everything still under way ends now. */
	while (engine.active) {
		struct http_request *req = engine.active;

		end_attempt(req);
		req->next = engine.retries;
		engine.retries = req;
	}
	fail_all(engine.retries);
	engine.retries = NULL;
	for (;;) {
		struct http_request *queued;
		struct timer *timers;

		pthread_mutex_lock(&engine.lock);
		queued = engine.queue;
		timers = engine.timers;
		engine.queue = NULL;
		engine.timers = NULL;
		pthread_mutex_unlock(&engine.lock);
		if (!queued && !timers)
			break;
		fail_all(queued);
		while (timers) {
			struct timer *t = timers;

			timers = t->next;
			t->fn(t->data, 1);
			free(t);
		}
	}
	return NULL;
}

int http_start(const char *auth_header, const char *ca_file)
{
	int rc;

	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return -EIO;
	engine.multi = curl_multi_init();
	if (!engine.multi)
		return -ENOMEM;
	curl_multi_setopt(engine.multi, CURLMOPT_MAX_HOST_CONNECTIONS, 16L);
	curl_multi_setopt(engine.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 32L);
	engine.auth_header = strdup(auth_header);
	engine.ca_file = ca_file ? strdup(ca_file) : NULL;
	if (!engine.auth_header)
		return -ENOMEM;
	engine.stop = 0;
	rc = pthread_create(&engine.thread, NULL, engine_main, NULL);
	if (rc)
		return -rc;
	engine.running = 1;
	return 0;
}

void http_stop(void)
{
	if (!engine.running)
		return;
	engine.stop = 1;
	wake();
	pthread_join(engine.thread, NULL);
	engine.running = 0;
	curl_multi_cleanup(engine.multi);
	engine.multi = NULL;
	/* the key is wiped, not just freed */
	explicit_bzero(engine.auth_header, strlen(engine.auth_header));
	free(engine.auth_header);
	free(engine.ca_file);
	engine.auth_header = NULL;
	engine.ca_file = NULL;
	curl_global_cleanup();
}
