/* engine.h - the core as the FUSE layer sees it: inodes, attributes, and
 * operations that answer now or park the request and answer it later.
 *
 * fs.c turns each FUSE request into one call here and replies with what it
 * returns; a call that returns ENGINE_PARKED has taken the request, and the
 * core answers it itself when it can (park.h). Nothing here blocks on the
 * network. Thread-safe: every call takes the core's lock for itself.
 */
#ifndef EXECFS_ENGINE_H
#define EXECFS_ENGINE_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

struct backend;

struct engine_config {
	const struct backend *backend;
	unsigned max_age;	/* seconds a latest.* answer is reused */
	unsigned timeout;	/* seconds a read may wait; 0 = no limit */
	unsigned long long cache_size; /* cap on cached result bytes */
	unsigned prefetch;	/* 1 << format: downloaded as soon as a run started here ends */
	char mount_dev[32];	/* "major:minor" of the mount, for noticing a lazy unmount */
	/* Asks the kernel to drop the name parent/name from its caches (and so
	 * forget its inodes), so that an object nobody uses can leave memory.
	 * Called on the worker thread, no lock held. NULL: never asked. */
	void (*forget_name)(fuse_ino_t parent, const char *name);
	unsigned sweep_ms;	/* how often idle objects are let go (sweep.c); 0: only
				 * when sweep_now() is called */
};

/* Returned by the calls that take req: the core answers it later. */
#define ENGINE_PARKED 1

/* An open file (fi->fh). */
struct handle;

/* Starts the worker thread, loads the index from the cache directory and
 * starts the timers. The HTTP engine must be running. Returns 0 or -errno
 * (no worker thread: nothing is started). */
int engine_init(const struct engine_config *config);

/* Ends every parked request with an error, stops the HTTP engine. */
void engine_shutdown(void);

/* Fills e for name under parent: 0, -errno, or ENGINE_PARKED (an execution
 * the mount does not know yet is asked of the API). */
int engine_lookup(fuse_req_t req, fuse_ino_t parent, const char *name, struct fuse_entry_param *e);

/* What a lookup of name in parent would answer, for readdirplus, given the
 * inode the listing gave it: 0, or -ENOENT when that inode is not name's in
 * parent (any more). */
int engine_entry(fuse_ino_t parent, fuse_ino_t ino, const char *name, struct fuse_entry_param *e);

/* Attributes of ino (h: the open file asking, or NULL) and how long they
 * may be cached: 0 or -errno. */
int engine_getattr(fuse_ino_t ino, struct handle *h, struct stat *st, double *timeout);

/* Only the truncation `echo x > execute` does: 0 (st filled) or -EPERM. */
int engine_setattr(fuse_ino_t ino, int to_set, const struct stat *attr, struct handle *h,
		   struct stat *st, double *timeout);

/* The kernel forgot nlookup of its references to ino. */
void engine_forget(fuse_ino_t ino, unsigned long long nlookup);

/* The target of a symlink: 0 or -errno. */
int engine_readlink(fuse_ino_t ino, char *target, size_t size);

/* Calls add for each entry of a directory, in a stable order: 0 or -errno. */
int engine_list(fuse_ino_t ino, void (*add)(void *ctx, const char *name, fuse_ino_t ino, mode_t mode),
		void *ctx);

/* Opens ino with fi->flags: 0 (fi->fh and the cache flags set), -errno, or
 * ENGINE_PARKED. */
int engine_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* Reads: 0 with *data (malloc'd, *len bytes; NULL when 0), -errno, or
 * ENGINE_PARKED. */
int engine_read(fuse_req_t req, struct handle *h, size_t size, off_t off, char **data, size_t *len);

/* Writes (execute, cancel): 0 when all size bytes are taken, -errno, or
 * ENGINE_PARKED. */
int engine_write(fuse_req_t req, struct handle *h, const char *buf, size_t size);

/* The last close of an open file. */
void engine_release(struct handle *h);

/* What df shows: the cache's cap (cache_size) as the size, the cached
 * results as used, the known queries and executions as files. */
void engine_statfs(struct statvfs *st);

#endif
