/* reader.h - a cached result as readers see it: an open binds to it (a
 * latest.* open to the run it names then), a read is answered from the
 * cache file or parked until the bytes, the run's end or its failure come,
 * and the last close lets its descriptor go.
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

/* Open flags for executions/<eid>/results.*: direct I/O and size 0 until
 * the result is whole, then the page cache, kept across opens. */
void reader_open_flags_locked(struct handle *h, struct fuse_file_info *fi);

/* Opens of results.* (not stream/): 0 when h's result is whole now (fi
 * set for the page cache), else ENGINE_PARKED until it is, or until the
 * errno a read would get (drop lets go of h then). */
int reader_open_whole(fuse_req_t req, struct handle *h, struct fuse_file_info *fi,
		      void (*drop)(struct handle *h));

/* The ready test of an open waiting for its result (w->target) to be whole:
 * drives the download or the polling like a read (lock held). */
int reader_whole_ready_locked(struct waiter *w);

/* Fills the waiter of an open of h: its handle, flags, deadline, and its
 * count on h's result when h is bound to one. */
void reader_wait_setup(struct waiter *w, struct handle *h, void (*drop)(struct handle *h),
		       struct fuse_file_info *fi);

/* A read of h at off: answered from disk, or parked until the bytes come,
 * the run ends or fails. Returns ENGINE_PARKED (the request is taken). */
int reader_read(fuse_req_t req, struct handle *h, size_t size, off_t off);

/* An open of r ends. Returns a descriptor to close after unlocking, or -1. */
int reader_release_locked(struct result *r);

#endif
