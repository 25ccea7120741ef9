/* engine.h - queries, executions and their results, and the FUSE requests
 * that wait on them.
 *
 * A request that must wait (a read of a result not there yet, an open of
 * latest.* being revalidated, a write to execute awaiting the API) is parked
 * here and answered later from the HTTP engine thread: a parked request holds
 * no thread. Each parked request registers an interrupt handler, so Ctrl-C
 * ends it at once with EINTR while the shared work goes on for the others.
 *
 * One lock (engine_lock) guards every object; FUSE handlers take it briefly
 * to read state, never across I/O to the network.
 */
#ifndef EXECFS_ENGINE_H
#define EXECFS_ENGINE_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include "backend.h"

struct engine_config {
	const struct backend *backend;
	unsigned max_age;	/* seconds a latest.* answer is reused */
	unsigned timeout;	/* seconds a read may wait; 0 = no limit */
	unsigned long long cache_size; /* cap on cached result bytes */
	char mount_dev[32];	/* "major:minor" of the mount, for noticing a lazy unmount */
};

/* Files under an object's directory; the inode is the object's base + kind. */
enum file_kind {
	FILE_DIR = 0,
	/* a query */
	FILE_LATEST_CSV,
	FILE_LATEST_JSON,
	FILE_LATEST_NDJSON,
	FILE_EXECUTE,
	FILE_LAST,
	FILE_QUERY_ERROR,
	/* an execution */
	FILE_STATUS,
	FILE_STATUS_JSON,
	FILE_RESULTS_CSV,
	FILE_RESULTS_JSON,
	FILE_RESULTS_NDJSON,
	FILE_EXEC_ERROR,
	FILE_CANCEL,
	FILE_QUERY_LINK,
	FILE_KIND_COUNT
};

#define INO_ROOT 1
#define INO_QUERIES 2
#define INO_EXECUTIONS 3
#define INO_FIRST_OBJECT 16
#define INO_PER_OBJECT 16

enum object_type { OBJECT_QUERY, OBJECT_EXECUTION };

struct result;

struct object {
	enum object_type type;
	unsigned index;		/* inode base = INO_FIRST_OBJECT + index * INO_PER_OBJECT */
	char id[72];
	struct object *hash_next;
};

struct query {
	struct object obj;
	char last[72];		/* newest run started here */
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

struct result {
	struct execution *ex;
	enum result_format format;
	int fd;			/* -1 when closed */
	off_t size;		/* bytes on local disk */
	int complete;
	int ended;		/* every byte is on disk, the commit may still be under way */
	int error;		/* errno of a failed download, 0 if none */
	char *error_message;
	int downloading;
	int opens;
	int waiters;
	time_t last_used;	/* for LRU eviction under cache_size */
	/* download state, engine thread only */
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

struct execution {
	struct object obj;
	char query_id[72];
	char result_id[72];	/* where the result lives, when not under the id */
	enum exec_state state;
	char *error;		/* the API's failure message */
	char *document;		/* the status document as received */
	long long status_at_ms;	/* when the status was last heard, 0 never */
	time_t ended_at;	/* when the run ended (the API's word, else when we
				 * learned it), 0 while running: its files' mtime */
	int known;		/* the API knows it: listed, persisted */
	long long missing_until_ms; /* a 404 said it does not exist, until then */
	int lookup_error;	/* errno of the last failed status request */
	long long poll_done_ms;	/* when the last status request ended */
	unsigned poll_seq;	/* status polls begun */
	unsigned poll_done_seq;	/* the poll_seq of the last one ended */
	int poll_failures;	/* polls in a row that failed (EIO, EAGAIN) */
	int poll_inflight;
	int poll_generation;
	int poll_delay_ms;
	int waiters;
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

/* Loads the index from the cache directory and starts the timers. The HTTP
 * engine must be running. */
void engine_init(const struct engine_config *config);

/* Ends every parked request with an error, stops the HTTP engine. */
void engine_shutdown(void);

void engine_lock(void);
void engine_unlock(void);

/* Inode helpers (lock held). */
struct object *engine_object_by_ino(fuse_ino_t ino, enum file_kind *kind);
fuse_ino_t engine_ino(const struct object *obj, enum file_kind kind);
struct query *engine_query(const char *qid, int create);
struct execution *engine_execution(const char *eid);

/* Calls fn for each listed query or known execution (lock held). */
void engine_each(enum object_type type, void (*fn)(struct object *obj, void *data), void *data);

/* Whether an id is valid, checked before any request. */
int engine_valid_qid(const char *name);
int engine_valid_eid(const char *name);

/* Size a result-like file shows: exact when complete on disk, else 0. */
off_t engine_file_size(struct object *obj, enum file_kind kind, struct handle *h);

/* The content of a small generated file (malloc'd). */
char *engine_file_text(struct object *obj, enum file_kind kind, size_t *len);

/* Asynchronous operations: each answers req itself, now or later. */
void engine_lookup_execution(fuse_req_t req, const char *eid);
void engine_open(fuse_req_t req, struct object *obj, enum file_kind kind, struct fuse_file_info *fi);
void engine_release(struct handle *h);

void engine_read(fuse_req_t req, struct handle *h, size_t size, off_t off);
void engine_execute(fuse_req_t req, struct query *q, struct handle *h, const char *buf, size_t size);
void engine_cancel(fuse_req_t req, struct execution *ex, size_t size);

/* What df shows: the cache's cap (cache_size) as the size, the cached
 * results as used, the known queries and executions as files. */
void engine_statfs(struct statvfs *st);

/* Fills an entry for obj/kind (lock held). */
void engine_fill_attr(struct object *obj, enum file_kind kind, struct handle *h, struct stat *st);

#endif
