/* cache.h - the cache directory: result files and the persisted index.
 *
 * Layout under cache_dir (0700, files 0600):
 *   results/<eid>.<ext>        a complete result, never rewritten
 *   results/<eid>.<ext>.<pid>-<n>.part  a download under way, named by its
 *                              daemon and locked while it runs; removed at
 *                              startup once its owner is gone
 *   results/<eid>.<ext>.lock   who downloads it (see cache_result_claim)
 *   executions/<eid>           the index entry of an execution (JSON)
 *   queries/<qid>              the index entry of a query (JSON)
 * Index entries and results become visible only complete: written to a
 * temporary name, fsync'd, renamed. A crash leaves nothing half-written
 * under a final name.
 */
#ifndef EXECFS_CACHE_H
#define EXECFS_CACHE_H

#include <stddef.h>
#include <sys/types.h>

#include "backend.h"

/* Opens (creating, 0700) the cache directory and its subdirectories, and
 * removes downloads a previous run left unfinished. Returns 0 or -errno. */
int cache_open(const char *dir);

void cache_close(void);

/* Writes an index entry ("executions", eid) atomically. Returns 0 or -errno. */
int cache_put_entry(const char *kind, const char *name, const char *data, size_t len);

/* What tells one version of an index entry from the next. */
struct cache_stamp {
	ino_t ino;
	off_t size;
	long long mtime_ns;
};

/* Reads an index entry whole (NUL-terminated, malloc'd), NULL if absent;
 * stamp (if not NULL) is set to its version. */
char *cache_get_entry(const char *kind, const char *name, struct cache_stamp *stamp);

/* The version of an index entry, without reading it. Returns 0 or -errno. */
int cache_entry_stamp(const char *kind, const char *name, struct cache_stamp *stamp);

/* Takes the lock under which daemons sharing the directory read, merge
 * and write one kind's entries (waits for it). Returns a descriptor for
 * cache_unlock_entries, or -errno. */
int cache_lock_entries(const char *kind);
void cache_unlock_entries(int fd);

/* Calls fn for each entry name of an index kind. */
void cache_list_entries(const char *kind, void (*fn)(const char *name, void *data), void *data);

/* Opens a complete result read-only; sets *size.
 * Returns fd or -errno. */
int cache_result_open(const char *eid, enum result_format format, off_t *size);

/* Whether a complete result is there, with its size, without
 * opening it. Returns 0 or -errno. */
int cache_result_probe(const char *eid, enum result_format format, off_t *size);

/* One download per result across the daemons sharing the directory:
 * results/<eid>.<ext>.lock is held by the daemon downloading it, and names
 * its .part file, which the others follow as it grows. */
struct cache_claim {
	int lock_fd;	/* the lock file: held (owner) or watched (follower); -1 none */
	int fd;		/* CLAIM_COMPLETE: the result; CLAIM_FOLLOW: the owner's file */
	off_t size;	/* CLAIM_COMPLETE */
};

enum claim_outcome {
	CLAIM_OWNER,	/* this daemon downloads; a dead owner's file is gone */
	CLAIM_COMPLETE,	/* another daemon committed it meanwhile */
	CLAIM_FOLLOW,	/* another daemon downloads it: follow c->fd */
};

/* Who downloads eid's result: returns a claim_outcome, or -errno (-EAGAIN:
 * the owner has not named its file yet; ask again soon). */
int cache_result_claim(const char *eid, enum result_format format, struct cache_claim *c);

enum follow_outcome {
	FOLLOW_RUNNING,		/* the owner is still at it */
	FOLLOW_COMMITTED,	/* c->fd is the complete result */
	FOLLOW_GONE,		/* the owner failed or died: claim again */
};

/* Where a followed download stands; *size: the bytes on disk. Returns a
 * follow_outcome or -errno. */
int cache_result_follow(const char *eid, enum result_format format, const struct cache_claim *c,
			off_t *size);

/* Creates the owner's temporary file (a name of its own, into part,
 * relative to the cache directory), locked while fd stays open, and names
 * it in the lock file. Returns fd (read-write) or -errno. */
int cache_result_begin(const char *eid, enum result_format format, int lock_fd, char *part,
		       size_t partlen);

/* The download is complete: fsync, rename part into place, release the
 * claim. fd stays usable. */
int cache_result_commit(const char *part, const char *eid, enum result_format format, int fd,
			int lock_fd);

/* Gives up a claim (removes the lock file while holding it, then closes
 * it); lock_fd -1: nothing. */
void cache_result_release(const char *eid, enum result_format format, int lock_fd);

/* A complete result in the directory, as the eviction sees it. */
struct cache_file {
	char eid[72];
	enum result_format format;
	off_t size;
	ino_t ino;
	long long atime_ns;	/* its last open by any daemon (cache_result_touch) */
};

/* Every complete result in the directory (malloc'd array, *count set). */
struct cache_file *cache_results_scan(size_t *count);

/* Removes a scanned result unless it was opened or replaced since the scan
 * (-EBUSY). Returns 0 or -errno. */
int cache_result_remove_if(const struct cache_file *file);

/* Records an open of a complete result, for every daemon's eviction: its
 * atime is set (explicitly, whatever the mount's atime options). */
void cache_result_touch(const char *eid, enum result_format format);

/* Removes a complete result (evicted). Readers holding it open keep reading. */
void cache_result_remove(const char *eid, enum result_format format);

/* The download failed: remove its temporary file (part "" : none) and
 * release the claim. */
void cache_result_abandon(const char *part, const char *eid, enum result_format format, int lock_fd);

#endif
