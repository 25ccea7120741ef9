/* fs.c - the FUSE layer: each operation calls the core once and replies
 * with what it returns. A call that returns ENGINE_PARKED has taken the
 * request: the core replies later, without a thread waiting here.
 */
#include "fs.h"
#include "engine.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct handle *handle_of(struct fuse_file_info *fi)
{
	return fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
}

/* Replies -rc for an error; nothing for a parked request. Returns 1 when
 * the reply is made (the caller has no more to do). */
static int reply_unless_done(fuse_req_t req, int rc)
{
	if (rc == ENGINE_PARKED)
		return 1;
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return 1;
	}
	return 0;
}

static void do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (!reply_unless_done(req, engine_lookup(req, parent, name, &e)))
		fuse_reply_entry(req, &e);
}

static void do_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	double timeout;

	if (!reply_unless_done(req, engine_getattr(ino, handle_of(fi), &st, &timeout)))
		fuse_reply_attr(req, &st, timeout);
}

static void do_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct stat st;
	double timeout;

	if (!reply_unless_done(req, engine_setattr(ino, to_set, attr, handle_of(fi), &st, &timeout)))
		fuse_reply_attr(req, &st, timeout);
}

static void do_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char target[256];

	if (!reply_unless_done(req, engine_readlink(ino, target, sizeof(target))))
		fuse_reply_readlink(req, target);
}

/* A directory listing: its names are taken whole at opendir; each readdir
 * answers from there, and readdirplus adds what a lookup of each would, so
 * `ls -l` costs one round trip. An entry's offset is its index plus one, the
 * same for both, which the kernel may mix on one open directory. */
struct listing_entry {
	char name[72];
	fuse_ino_t ino;
	mode_t mode;
};

struct listing {
	struct listing_entry *entries;
	size_t count, alloc;
};

static void add_entry(void *ctx, const char *name, fuse_ino_t ino, mode_t mode)
{
	struct listing *l = ctx;
	struct listing_entry *e;

	if (l->count == l->alloc) {
		size_t alloc = l->alloc ? 2 * l->alloc : 16;
		struct listing_entry *grown = realloc(l->entries, alloc * sizeof(*grown));

		if (!grown)
			return;
		l->entries = grown;
		l->alloc = alloc;
	}
	e = &l->entries[l->count++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->ino = ino;
	e->mode = mode;
}

static void do_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct listing *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return (void)fuse_reply_err(req, ENOMEM);
	rc = engine_list(ino, add_entry, l);
	if (rc) {
		free(l->entries);
		free(l);
		return (void)fuse_reply_err(req, -rc);
	}
	fi->fh = (uint64_t)(uintptr_t)l;
	fi->cache_readdir = 0;
	fuse_reply_open(req, fi);
}

static void readdir_common(fuse_req_t req, fuse_ino_t dir, size_t size, off_t off,
			   struct fuse_file_info *fi, int plus)
{
	struct listing *l = (struct listing *)(uintptr_t)fi->fh;
	char *buf;
	size_t used = 0;

	if (off < 0 || (size_t)off > l->count)
		return (void)fuse_reply_err(req, EINVAL); /* not an offset handed out */
	buf = malloc(size ? size : 1);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	for (size_t i = (size_t)off; i < l->count; i++) {
		struct listing_entry *le = &l->entries[i];
		struct fuse_entry_param e;
		size_t n;

		if (plus) {
			/* an entry is a reference the kernel counts (it forgets
			 * it later): filled only once it is sure to be sent */
			memset(&e, 0, sizeof(e));
			if (fuse_add_direntry_plus(req, NULL, 0, le->name, &e, 0) > size - used)
				break;
			/* "." and "..": no lookup */
			if (strcmp(le->name, ".") == 0 || strcmp(le->name, "..") == 0 ||
			    engine_entry(dir, le->ino, le->name, &e)) {
				memset(&e, 0, sizeof(e));
				e.attr.st_ino = le->ino;
				e.attr.st_mode = le->mode;
			}
			n = fuse_add_direntry_plus(req, buf + used, size - used, le->name, &e,
						   (off_t)i + 1);
		} else {
			struct stat st;

			memset(&st, 0, sizeof(st));
			st.st_ino = le->ino;
			st.st_mode = le->mode;
			n = fuse_add_direntry(req, buf + used, size - used, le->name, &st, (off_t)i + 1);
		}
		if (n > size - used)
			break; /* did not fit: the next call starts here */
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, 0);
}

static void do_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, 1);
}

static void do_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct listing *l = (struct listing *)(uintptr_t)fi->fh;

	(void)ino;
	free(l->entries);
	free(l);
	fuse_reply_err(req, 0);
}

static void do_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (reply_unless_done(req, engine_open(req, ino, fi)))
		return;
	if (fuse_reply_open(req, fi) == -ENOENT)
		engine_release(handle_of(fi)); /* the opener went away */
}

static void do_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	char *data;
	size_t len;

	(void)ino;
	/* data is a private copy: once the kernel has the reply, the opener
	 * may close and a release on another thread free the original */
	if (reply_unless_done(req, engine_read(req, handle_of(fi), size, off, &data, &len)))
		return;
	fuse_reply_buf(req, data, len);
	free(data);
}

static void do_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino;
	(void)off;
	if (!reply_unless_done(req, engine_write(req, handle_of(fi), buf, size)))
		fuse_reply_write(req, size);
}

static void do_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	engine_release(handle_of(fi));
	fuse_reply_err(req, 0);
}

/* The namespace is the API's: nothing can be created, removed or renamed. */
static void do_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	fuse_reply_err(req, EPERM);
}

static void do_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	fuse_reply_err(req, EPERM);
}

static void do_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	fuse_reply_err(req, EPERM);
}

static void do_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link, (void)parent, (void)name;
	fuse_reply_err(req, EPERM);
}

static void do_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	fuse_reply_err(req, EPERM);
}

static void do_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	fuse_reply_err(req, EPERM);
}

static void do_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	fuse_reply_err(req, EPERM);
}

static void do_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* reads of cached results go from the cache file to the kernel by splice */
	conn->want |= conn->capable & (FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	/* lookups in one directory side by side: one parked on a slow status
	 * (an unknown execution id) must not hold up the others */
	conn->want |= conn->capable & FUSE_CAP_PARALLEL_DIROPS;
	/* the core knows when a file's bytes change (see latest.c): no
	 * attribute request before every cached read */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

static struct fuse_session *session;

void fs_set_session(struct fuse_session *se)
{
	session = se;
}

void fs_forget_name(fuse_ino_t parent, const char *name)
{
	if (session)
		fuse_lowlevel_notify_inval_entry(session, parent, name, strlen(name));
}

static void do_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	engine_forget(ino, nlookup);
	fuse_reply_none(req);
}

static void do_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		engine_forget(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void do_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	(void)ino;
	engine_statfs(&st);
	fuse_reply_statfs(req, &st);
}

const struct fuse_lowlevel_ops fs_operations = {
	.init = do_init,
	.lookup = do_lookup,
	.forget = do_forget,
	.forget_multi = do_forget_multi,
	.getattr = do_getattr,
	.setattr = do_setattr,
	.readlink = do_readlink,
	.mknod = do_mknod,
	.mkdir = do_mkdir,
	.unlink = do_unlink,
	.rmdir = do_unlink,
	.symlink = do_symlink,
	.rename = do_rename,
	.link = do_link,
	.open = do_open,
	.read = do_read,
	.write = do_write,
	.release = do_release,
	.opendir = do_opendir,
	.readdir = do_readdir,
	.readdirplus = do_readdirplus,
	.releasedir = do_releasedir,
	.statfs = do_statfs,
	.create = do_create,
};
