/* poll.h - status polling: one chain of status requests per execution, for
 * as long as someone waits on it, backing off from 0.5 s to 3 s; what the
 * API says of a run; and the requests that wait for a fresh status (opens of
 * status files, lookups of runs the mount has not seen).
 */
#ifndef EXECFS_POLL_H
#define EXECFS_POLL_H

#include "core.h"

struct waiter;

#define POLL_FIRST_MS 500
#define POLL_MAX_MS 3000
#define POLL_FAILURES_MAX 3	/* failed status polls in a row that end a read */
#define STATUS_FRESH_MS 1000	/* a status younger than this is not asked again */
#define MISSING_CACHE_MS 10000	/* how long a 404 for an execution is believed */

/* The one place an execution's poll state changes; logs it at debug level. */
void poll_set_state_locked(struct execution *ex, enum poll_state state);

/* Keeps a poll coming while someone waits: starts the chain if idle. */
void poll_ensure_locked(struct execution *ex);

/* Asks for the status now, replacing a poll scheduled later; nothing when a
 * poll is under way (its end re-tests the waiters). */
void poll_now_locked(struct execution *ex);

/* For a reader waiting on a run not ended: the errno that ends its wait (a
 * lookup that failed for good; a status that stayed broken for
 * POLL_FAILURES_MAX polls, one begun after the reader came), or 0 to wait
 * on, with polling kept going. */
int poll_wait_locked(struct waiter *w, struct execution *ex);

/* -o prefetch: the formats of ex to download as soon as it ends; ex is
 * polled until then, whoever reads. Waiters the downloads can answer at once
 * go onto *ready. */
void poll_prefetch_locked(struct execution *ex, unsigned formats, struct waiter **ready);

/* What the API said of ex (a status, a latest answer, an execute reply):
 * applied, logged when the run failed, persisted when it changed. */
void poll_apply_status_locked(struct execution *ex, struct exec_info *info);

/* Opens of status, status.json and error: parked until a fresh status when
 * the one held is old. 0 when h can be answered now (text filled), else
 * ENGINE_PARKED. */
int poll_open_status(fuse_req_t req, struct execution *ex, struct handle *h,
		     struct fuse_file_info *fi, void (*drop)(struct handle *h));

/* A lookup of executions/<eid> for an id the mount does not know: 0 with e
 * filled, -errno, or ENGINE_PARKED until the API answers. */
int poll_lookup(fuse_req_t req, const char *eid, struct fuse_entry_param *e);

#endif
