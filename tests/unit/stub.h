/* stub.h - what the engine's unit tests put in place of the HTTP engine,
 * the worker thread and libfuse's replies: requests and jobs queue up until
 * the test answers or runs them, and time moves only when the test says.
 */
#ifndef EXECFS_STUB_H
#define EXECFS_STUB_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <stddef.h>

#include "http.h"

/* A FUSE request and what was answered to it. */
struct fuse_req {
	int answered;		/* replies sent (must end at 1) */
	int err;		/* fuse_reply_err's errno, 0 for a success reply */
	char *data;		/* fuse_reply_buf / fuse_reply_data bytes */
	size_t len;
	struct fuse_file_info fi; /* fuse_reply_open */
	struct fuse_entry_param entry; /* fuse_reply_entry */
	size_t written;		/* fuse_reply_write */
	fuse_interrupt_func_t interrupt;
	void *interrupt_data;
};

struct fuse_req *stub_req(void);
void stub_req_free(struct fuse_req *req);

/* The fake clock, in ms; advancing it runs the timers that fall due, in
 * order (each may add more). */
long long stub_now(void);
void stub_advance(long long ms);
/* Runs the timers due now (delay 0) until none is left. */
void stub_run_due(void);
/* When the next timer falls due, -1 when none is pending. */
long long stub_next_timer(void);

/* Requests submitted and not answered yet, oldest first. */
int stub_pending(void);
struct http_request *stub_request(int i);
/* Requests submitted in all, since the start or the last reset. */
int stub_submitted(void);
void stub_reset_count(void);

/* Answers the oldest pending request whose URL holds url_part: a response
 * (status, header lines, body) streamed to on_data when it has one, and
 * on_done. Returns 0, or -1 when no such request is pending. */
int stub_answer(const char *url_part, long status, const char *headers, const char *body);
/* The same with a transport failure (the server never answered). */
int stub_fail(const char *url_part);

/* The worker's queued jobs; running them runs each in order. When refusing,
 * worker_submit fails as it does without a thread. */
int stub_jobs(void);
void stub_run_jobs(void);
void stub_worker_refuse(int refuse);

#endif
