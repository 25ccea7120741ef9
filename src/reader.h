/* reader.h - a cached result as readers see it: an open binds to it (a
 * latest.* open to the run it names then) and is answered once the result is
 * whole (at once under stream/), with the page cache where the bytes cannot
 * change under it (for latest.*, one inode shared by runs, while every cached
 * open reads the same run); a read is answered from the cache file or parked
 * until the bytes, the run's end or its failure come; the last close lets
 * its descriptor go.
 */
#ifndef EXECFS_READER_H
#define EXECFS_READER_H

#include "core.h"

struct waiter;

/* An open file h starts reading r: counted, and a failed download forgotten
 * so that this open tries again. */
void reader_bind_locked(struct handle *h, struct result *r);

/* Opens the cache file of h's result if it is complete and not open yet.
 * Lock not held (it reads the disk). */
void reader_open_file(struct handle *h);

/* The last step of an open of h bound to its result, outside the lock: the
 * cache file opened, then fi's flags: results.* once whole through the page
 * cache; latest.* too, while every cached open of its inode reads the same
 * result. */
void reader_finish_open(struct handle *h, struct fuse_file_info *fi);

/* Whether an open of h, bound to its result, is answered now: a stream/
 * name at once, any other once the result is whole. */
int reader_open_now_locked(const struct handle *h);

/* Opens executions/<eid>/results.* or stream/results.* for h (bound): 0 when
 * answered now (fi set: the page cache once whole), else ENGINE_PARKED until
 * the result is whole, or until the errno a read would get (drop lets go of
 * h then). */
int reader_open(fuse_req_t req, struct handle *h, struct fuse_file_info *fi,
		void (*drop)(struct handle *h));

/* The ready test of an open waiting for its result (w->target) to be whole:
 * drives the download or the polling like a read (lock held). */
int reader_whole_ready_locked(struct waiter *w);

/* A parked open of h waiting on target with ready: its handle, flags,
 * deadline, its count on h's result when h is bound to one, and
 * reader_finish_open as its last step. NULL when
 * out of memory, after answering req and dropping h. */
struct waiter *reader_open_waiter(fuse_req_t req, void *target, int (*ready)(struct waiter *w),
				  struct handle *h, void (*drop)(struct handle *h),
				  struct fuse_file_info *fi);

/* A read of h at off: answered from disk, or parked until the bytes come,
 * the run ends or fails. Returns ENGINE_PARKED (the request is taken). */
int reader_read(fuse_req_t req, struct handle *h, size_t size, off_t off);

/* An open of h's result ends (and, for latest.*, its share of the inode's
 * page cache). Returns a descriptor to close after unlocking, or -1. */
int reader_release_locked(struct handle *h);

#endif
