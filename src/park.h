/* park.h - parked requests: FUSE requests that wait for something (a result's
 * bytes, a status, the API's answer to a write) without holding a thread.
 *
 * A room that makes a request wait fills a waiter with its own ready test
 * and parks it; when its state changes it wakes the waiters on that target,
 * and each whose test passes is answered. Ctrl-C (a FUSE interrupt) ends a
 * parked request at once with EINTR; a deadline ends it with ETIMEDOUT when
 * its ready test says so. This file knows nothing of what is waited for.
 */
#ifndef EXECFS_PARK_H
#define EXECFS_PARK_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <sys/types.h>

/* What the answer is. */
enum park_reply {
	PARK_REPLY_DATA,	/* a read: bytes from fd at data_off, or data */
	PARK_REPLY_OPEN,	/* an open: handle, with fi */
	PARK_REPLY_ENTRY,	/* a lookup: entry */
	PARK_REPLY_WRITE,	/* a write: size bytes taken */
};

enum wait_state { WAIT_NEW, WAIT_LISTED, WAIT_DONE };

struct handle;
struct query;
struct execution;
struct cJSON;

struct waiter {
	struct waiter *prev, *next;
	fuse_req_t req;
	enum park_reply reply;
	enum wait_state state;
	/* Whether w can be answered now (lock held): sets err or the reply's
	 * fields and returns 1, or returns 0 to wait on. */
	int (*ready)(struct waiter *w);
	/* Optional, lock not held: work for the reply that may touch the disk,
	 * run once the reply is decided and before it is sent. */
	void (*prepare)(struct waiter *w);
	void *target;		/* what it waits on: park_wake_locked(target) */
	int *count;		/* optional: counts the listed waiters of the target */
	int interruptible;	/* Ctrl-C ends it (never for writes: see execute.c) */
	int owned_by_request;	/* freed by the room whose HTTP request answers it */
	long long since_ms;
	long long deadline_ms;	/* 0: none; the ready test decides ETIMEDOUT */
	unsigned mark;		/* the room's own mark (poll.c: a poll sequence) */
	int marked;
	int interrupted;	/* interrupted while being parked */
	/* what the rooms need to decide */
	struct handle *handle;	/* opens: the open file the answer hands over */
	/* opens: lets go of handle when the answer does not hand it over (an
	 * error, an interrupt, an opener gone). Lock not held. */
	void (*drop)(struct handle *h);
	struct query *query;
	struct execution *execution;
	off_t off;
	size_t size;
	struct cJSON *params;	/* execute: the parsed request */
	/* the reply, decided under the lock, sent after it */
	int done;		/* writes: the answer is in */
	int err;
	int fd;			/* PARK_REPLY_DATA: a descriptor of its own, or -1 */
	struct result *pinned;	/* PARK_REPLY_DATA: read from pinned_fd in prepare */
	int pinned_fd;
	char *data;		/* PARK_REPLY_DATA: copied bytes */
	off_t data_off;
	size_t data_len;
	struct fuse_file_info fi;
	struct fuse_entry_param entry;
};

/* A waiter for req (freed by park, unless owned_by_request); NULL when out
 * of memory, after answering req with ENOMEM. */
struct waiter *park_waiter_new(fuse_req_t req, enum park_reply reply, void *target,
			       int (*ready)(struct waiter *w));

/* Parks w, or answers it at once when it is ready (writes are never ready
 * at once). Lock not held. Returns 1 while w waits, 0 when it was answered
 * (an unowned w is then freed). */
int park(struct waiter *w);

/* Moves every listed waiter on target that is ready onto *ready (lock held). */
void park_wake_locked(void *target, struct waiter **ready);

/* w waits on another target from now on, counted in count (lock held;
 * from its ready test too). */
void park_retarget_locked(struct waiter *w, void *target, int *count);

/* Moves one listed waiter onto *ready, answered by its own fields (lock held). */
void park_take_locked(struct waiter *w, struct waiter **ready);

/* Answers the waiters taken (lock not held). */
void park_send(struct waiter *ready);

/* Re-tests waiters whose deadline has passed (lock not held). */
void park_expire(long long now_ms);

/* Ends every parked request with err; after park_detach, new ones too. Lock
 * not held. */
void park_end_all(int err);
void park_detach(int err);

#endif
