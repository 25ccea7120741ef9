/* http.h - the HTTP engine: one thread driving libcurl's multi interface.
 *
 * Every other thread hands it requests and timers through a queue; all
 * callbacks run on the engine thread, one at a time, so code that only runs
 * there needs no lock of its own. Connections are reused across requests.
 *
 * Retries happen here, by one policy: 429 always (honouring Retry-After);
 * 502, 503, 504 and transport failures only for requests that cannot start a
 * paid run twice, or when the request surely never left (connect failed).
 */
#ifndef EXECFS_HTTP_H
#define EXECFS_HTTP_H

#include <stddef.h>

#include "buffer.h"

struct http_request;

/* Receives body bytes of a 2xx response as they arrive. Returns 0, or
 * -errno to abort the transfer (no retry follows), or HTTP_PAUSE to leave
 * these bytes unread and pause the transfer until http_resume(). */
#define HTTP_PAUSE 1
typedef int (*http_data_fn)(struct http_request *req, const char *data, size_t len);
typedef void (*http_fn)(struct http_request *req);

struct http_request {
	/* Set by the caller before http_submit(); freed by http_request_free(). */
	const char *method;
	char *url;
	char *body;
	int starts_run;		/* 1: never resend once it may have reached the server */
	int call;		/* the backend's enum api_call, for reading errors */
	char what[128];		/* the path in the mount it serves, for log lines */
	http_data_fn on_data;	/* NULL: the body is kept in `response` */
	http_fn on_attempt;	/* optional: called before every attempt */
	http_fn on_done;	/* called once, with the final outcome */
	http_fn on_drained;	/* optional, with on_data: called after each round of
				 * socket activity that brought body bytes, so the
				 * consumer can batch work across libcurl's 16 KB calls */
	void *data;

	/* The outcome, valid in on_done (and headers/status in on_data). */
	long status;		/* 0 when no response came */
	int transport_failed;	/* 1 when the exchange broke (see error) */
	int aborted;		/* on_data returned an error: `abort_errno` */
	int abort_errno;
	int shutdown;		/* failed because the filesystem is going away */
	char error[256];	/* curl's words for a transport failure */
	struct buffer headers;	/* raw header lines of the final response */
	struct buffer response;	/* the body, when not streamed or not 2xx */
	int attempts;

	/* The engine's own. */
	int got_data;		/* body bytes since on_drained was last called */
	void *easy;
	void *header_list;
	struct http_request *next;
	long long retry_at_ms;
};

/* Starts the engine thread. auth_header is a full header line that goes on
 * every request and is never logged. ca_file may be NULL. Returns 0 or -errno. */
int http_start(const char *auth_header, const char *ca_file);

/* Stops the thread; requests still running end with transport_failed and
 * their on_done called; pending timers are called with cancelled = 1. */
void http_stop(void);

/* A new request for method and url (copied), body may be NULL (copied). */
struct http_request *http_request_new(const char *method, const char *url, const char *body);

void http_request_free(struct http_request *req);

/* Hands a request to the engine. Thread-safe. After this the engine owns the
 * request until on_done, which must free it (or resubmit it). */
void http_submit(struct http_request *req);

/* Resumes a transfer its on_data paused; the bytes it left come again,
 * possibly before this returns. Engine thread only; harmless on a request
 * that is not paused or not under way. */
void http_resume(struct http_request *req);

/* Runs fn(data, 0) on the engine thread after delay_ms (0: soon).
 * Thread-safe. At shutdown, pending timers run with cancelled = 1. Returns
 * 0, or -ENOMEM when the timer could not be made (fn never runs). */
int http_later(long delay_ms, void (*fn)(void *data, int cancelled), void *data);

/* Whether the caller runs on the engine thread. */
int http_on_engine_thread(void);

/* Milliseconds of a monotonic clock. */
long long http_now_ms(void);

#endif
