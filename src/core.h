/* core.h - the core's own structs and settings, shared by its rooms (never
 * by fs.c or main.c, which see engine.h only).
 *
 * Every field here is guarded by the core lock (lock.h) unless its comment
 * says otherwise.
 */
#ifndef EXECFS_CORE_H
#define EXECFS_CORE_H

#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "backend.h"
#include "buffer.h"
#include "cache.h"
#include "engine.h"
#include "lock.h"
#include "tree.h"

/* The mount's settings, set once at engine_init. */
extern struct engine_config core_config;
/* When the filesystem was mounted: the time stamp of what has no other. */
extern time_t core_mount_time;

enum object_type { OBJECT_QUERY, OBJECT_EXECUTION };

/* What queries and executions share: their place in the object table. */
struct object {
	enum object_type type;
	unsigned index;		/* inode base = INO_FIRST_OBJECT + index * INO_PER_OBJECT */
	char id[72];
	struct object *hash_next;
	/* Who uses it: while any does, it stays in memory (sweep.c). */
	unsigned long long nlookup; /* the kernel's references to its inodes:
				 * entries sent, less those it forgot */
	int handles;		/* open files, and callers between two holds of the lock */
	long long used_ms;	/* last looked up or opened (http_now_ms) */
	unsigned pinned;	/* the sweep pass that found it needed by a query */
};

struct result;
struct download;

struct query {
	struct object obj;
	char last[72];		/* newest run started through any mount */
	long long last_at;	/* when it was started, ms since the epoch */
	struct cache_stamp stamp; /* the version of its index entry read last */
	char latest[72];	/* run holding the latest result */
	time_t latest_checked;	/* when the API last confirmed `latest` */
	char *error;		/* last error, NULL if none */
	int listed;		/* shown in /queries, persisted */
	int resolving;		/* a latest request is in flight */
	int resolve_error;	/* errno of the last resolution, 0 if it worked */
	/* latest.*: the result whose bytes the kernel may hold in the page cache
	 * of this inode, and how many opens read it through that cache */
	struct result *page_owner[FORMAT_COUNT];
	int cached_opens[FORMAT_COUNT];
};

/* Descriptors a result keeps for replies still reading them. */
#define RESULT_RETIRED_MAX 4

/* Where a result stands; changed only by result_set_state_locked(). */
enum result_state {
	RESULT_ABSENT,		/* not on local disk, nothing under way */
	RESULT_STREAMING,	/* a download writes it; size grows as bytes land */
	RESULT_COMMITTING,	/* every byte is on disk, the commit is under way */
	RESULT_COMPLETE,	/* in the cache for good */
	RESULT_UNKEPT,		/* every byte was on disk but the commit failed: open
				 * files keep reading it whole until their last close */
	RESULT_FAILED,		/* the download failed: error, error_message */
};

struct result {
	struct execution *ex;
	enum result_format format;
	enum result_state state;
	int fd;			/* -1 when closed */
	off_t size;		/* bytes on local disk */
	int error;		/* RESULT_FAILED: the errno readers get */
	char *error_message;
	int opens;
	int waiters;		/* parked reads */
	int pins;		/* replies reading fd outside the lock */
	int retired[RESULT_RETIRED_MAX]; /* descriptors replaced while pinned: */
	int retired_count;	/* closed at the last unpin */
	/* The download's own state: engine thread only (share.c, download.c). */
	int lock_fd;		/* its claim in the cache directory: held while this
				 * daemon downloads, watched while it follows
				 * another's download; -1 none */
	int claim_tries;	/* claims that found the owner not ready yet */
	struct download *dl;	/* this daemon's download of it, while one runs
				 * (download.c); NULL otherwise */
};

/* Where an execution's status polling stands; changed only by
 * poll_set_state_locked(). */
enum poll_state {
	POLL_IDLE,		/* nothing asked, nothing planned */
	POLL_SCHEDULED,		/* a timer will send the next status request */
	POLL_INFLIGHT,		/* a status request is under way */
	POLL_ANSWERED,		/* its reply is being acted on: a waiter may ask for
				 * a poll now, else the chain goes on or stops */
};

struct execution {
	struct object obj;
	char query_id[72];
	char result_id[72];	/* where the result lives, when not under the id */
	enum exec_state state;
	char *error;		/* the API's failure message */
	char *wait_note;	/* why a read gave up waiting (timeout=N), until the end */
	char *document;		/* the status document as received */
	long long status_at_ms;	/* when the status was last heard, 0 never */
	time_t ended_at;	/* when the run ended (the API's word, else when we
				 * learned it), 0 while running: its files' mtime */
	int known;		/* the API knows it: listed, persisted */
	long long missing_until_ms; /* a 404 said it does not exist, until then */
	int waiters;		/* parked opens of status files and lookups */
	unsigned prefetch;	/* 1 << format: to download as soon as the run ends */
	/* polling (poll.c) */
	enum poll_state poll;
	int ticks;		/* timers of its polls not fired yet, stale or not */
	int lookup_error;	/* errno of the last failed status request */
	long long poll_done_ms;	/* when the last status request ended */
	unsigned poll_seq;	/* status polls begun */
	unsigned poll_done_seq;	/* the poll_seq of the last one ended */
	int poll_failures;	/* polls in a row that failed (EIO, EAGAIN) */
	int poll_generation;	/* a timer of another generation is stale */
	int poll_delay_ms;	/* the back-off before the next poll */
	struct result results[FORMAT_COUNT];
};

/* An open file. */
struct handle {
	struct handle *prev, *next;
	enum file_kind kind;
	struct object *obj;
	struct result *result;	/* results.* and latest.*: the snapshot read */
	int cached;		/* latest.*: counted in the query's cached_opens */
	char execution_id[72];	/* execute: the run this open file started */
	off_t id_base;		/* execute: offset of the first read of that id */
	int id_read;		/* execute: the id has been read from id_base */
	int write_error;	/* execute: a write failed; the file takes no more */
	char *pending;		/* execute: a JSON object whose end has not come yet */
	size_t pending_len;
	char *text;		/* small generated files: the content at open */
	size_t text_len;
};

/* Wall-clock time in ms since the epoch: comparable across daemons. */
static inline long long core_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Replaces a malloc'd string field with a copy of value (NULL: none). */
static inline void core_set_string(char **field, const char *value)
{
	free(*field);
	*field = value ? strdup(value) : NULL;
}

#endif
