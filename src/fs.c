/* fs.c - names, attributes and the operations table.
 *
 * Handlers never wait on the network: they answer from the engine's state
 * or hand the request to the engine, which answers it later.
 */
#include "fs.h"
#include "buffer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct name_entry {
	const char *name;
	enum file_kind kind;
};

static const struct name_entry query_files[] = {
	{"latest.csv", FILE_LATEST_CSV}, {"latest.json", FILE_LATEST_JSON},
	{"latest.ndjson", FILE_LATEST_NDJSON},
	{"execute", FILE_EXECUTE},	 {"last", FILE_LAST},
	{"error", FILE_QUERY_ERROR},
};

static const struct name_entry execution_files[] = {
	{"status", FILE_STATUS},	   {"status.json", FILE_STATUS_JSON},
	{"results.csv", FILE_RESULTS_CSV}, {"results.json", FILE_RESULTS_JSON},
	{"results.ndjson", FILE_RESULTS_NDJSON},
	{"error", FILE_EXEC_ERROR},	   {"cancel", FILE_CANCEL},
	{"query", FILE_QUERY_LINK},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static time_t mount_time;

static struct handle *handle_of(struct fuse_file_info *fi)
{
	return fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
}

/* Whether a file exists right now under its object (lock held). */
static int file_present(struct object *obj, enum file_kind kind)
{
	if (kind == FILE_LAST)
		return ((struct query *)obj)->last[0] != '\0';
	if (kind == FILE_QUERY_LINK)
		return ((struct execution *)obj)->query_id[0] != '\0';
	return 1;
}

/* Attributes that change (sizes, states, links) are never cached. */
static double attr_timeout_for(enum file_kind kind)
{
	return kind == FILE_DIR || kind == FILE_EXECUTE || kind == FILE_CANCEL ? 1.0 : 0.0;
}

static void fill_static_dir(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_atime = st->st_mtime = st->st_ctime = mount_time;
}

/* What a lookup of obj/kind answers (lock held). */
static void fill_object_entry(struct object *obj, enum file_kind kind, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = engine_ino(obj, kind);
	e->attr_timeout = attr_timeout_for(kind);
	e->entry_timeout = kind == FILE_LAST || kind == FILE_QUERY_LINK ? 0.0 : 1.0;
	engine_fill_attr(obj, kind, NULL, &e->attr);
}

static void reply_object_entry(fuse_req_t req, struct object *obj, enum file_kind kind)
{
	struct fuse_entry_param e;

	fill_object_entry(obj, kind, &e);
	engine_unlock();
	fuse_reply_entry(req, &e);
}

static void do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	enum file_kind kind;
	struct object *obj;
	const struct name_entry *names;
	size_t count;

	if (parent == INO_ROOT) {
		memset(&e, 0, sizeof(e));
		if (strcmp(name, "queries") == 0)
			e.ino = INO_QUERIES;
		else if (strcmp(name, "executions") == 0)
			e.ino = INO_EXECUTIONS;
		else
			return (void)fuse_reply_err(req, ENOENT);
		fill_static_dir(e.ino, &e.attr);
		e.attr_timeout = e.entry_timeout = 3600.0;
		fuse_reply_entry(req, &e);
		return;
	}
	if (parent == INO_QUERIES) {
		struct query *q;

		if (!engine_valid_qid(name))
			return (void)fuse_reply_err(req, ENOENT);
		engine_lock();
		q = engine_query(name, 1);
		if (!q) {
			engine_unlock();
			return (void)fuse_reply_err(req, ENOMEM);
		}
		reply_object_entry(req, &q->obj, FILE_DIR);
		return;
	}
	if (parent == INO_EXECUTIONS) {
		struct execution *ex;

		if (!engine_valid_eid(name))
			return (void)fuse_reply_err(req, ENOENT);
		engine_lock();
		ex = engine_execution(name);
		if (ex && ex->known) {
			reply_object_entry(req, &ex->obj, FILE_DIR);
			return;
		}
		engine_unlock();
		engine_lookup_execution(req, name);
		return;
	}
	engine_lock();
	obj = engine_object_by_ino(parent, &kind);
	if (!obj || kind != FILE_DIR) {
		engine_unlock();
		return (void)fuse_reply_err(req, obj ? ENOTDIR : ENOENT);
	}
	names = obj->type == OBJECT_QUERY ? query_files : execution_files;
	count = obj->type == OBJECT_QUERY ? COUNT(query_files) : COUNT(execution_files);
	for (size_t i = 0; i < count; i++)
		if (strcmp(name, names[i].name) == 0 && file_present(obj, names[i].kind)) {
			reply_object_entry(req, obj, names[i].kind);
			return;
		}
	engine_unlock();
	fuse_reply_err(req, ENOENT);
}

static void do_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	enum file_kind kind;
	struct object *obj;

	if (ino == INO_ROOT || ino == INO_QUERIES || ino == INO_EXECUTIONS) {
		fill_static_dir(ino, &st);
		fuse_reply_attr(req, &st, 3600.0);
		return;
	}
	engine_lock();
	obj = engine_object_by_ino(ino, &kind);
	if (!obj || kind >= FILE_KIND_COUNT) {
		engine_unlock();
		fuse_reply_err(req, ENOENT);
		return;
	}
	engine_fill_attr(obj, kind, handle_of(fi), &st);
	engine_unlock();
	fuse_reply_attr(req, &st, attr_timeout_for(kind));
}

static void do_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	enum file_kind kind = FILE_DIR;
	struct object *obj;
	struct stat st;

	(void)attr;
	engine_lock();
	obj = engine_object_by_ino(ino, &kind);
	/* `echo x > execute` truncates first: allowed, and a no-op */
	if (!obj || (kind != FILE_EXECUTE && kind != FILE_CANCEL) ||
	    (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME)) ||
	    ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != 0)) {
		engine_unlock();
		fuse_reply_err(req, EPERM);
		return;
	}
	engine_fill_attr(obj, kind, handle_of(fi), &st);
	engine_unlock();
	fuse_reply_attr(req, &st, attr_timeout_for(kind));
}

static void do_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char target[256];
	enum file_kind kind;
	struct object *obj;

	engine_lock();
	obj = engine_object_by_ino(ino, &kind);
	if (obj && kind == FILE_LAST && ((struct query *)obj)->last[0]) {
		snprintf(target, sizeof(target), "../../executions/%s", ((struct query *)obj)->last);
	} else if (obj && kind == FILE_QUERY_LINK && ((struct execution *)obj)->query_id[0]) {
		snprintf(target, sizeof(target), "../../queries/%s", ((struct execution *)obj)->query_id);
	} else {
		engine_unlock();
		fuse_reply_err(req, obj ? EINVAL : ENOENT);
		return;
	}
	engine_unlock();
	fuse_reply_readlink(req, target);
}

/* Replies with a private copy of data: once the kernel has the reply, the
 * opener may close and a release on another thread free the original while
 * this thread is still returning from writev(). */
void fs_reply_copy(fuse_req_t req, const char *data, size_t len)
{
	char *copy = len ? malloc(len) : NULL;

	if (len && !copy) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (len)
		memcpy(copy, data, len);
	fuse_reply_buf(req, copy, len);
	free(copy);
}

/* A directory listing: its names are taken whole at opendir; each readdir
 * answers from there, and readdirplus adds what a lookup of each would, so
 * `ls -l` costs one round trip. An entry's offset is its index plus one, the
 * same for both, which the kernel may mix on one open directory. */
struct listing_entry {
	char name[72];
	fuse_ino_t ino;
	mode_t mode;
	struct object *obj;	/* NULL: ".", "..", /queries, /executions */
	enum file_kind kind;
};

struct listing {
	struct listing_entry *entries;
	size_t count, alloc;
};

static void add_entry(struct listing *l, const char *name, fuse_ino_t ino, mode_t mode,
		      struct object *obj, enum file_kind kind)
{
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
	e->obj = obj;
	e->kind = kind;
}

static void add_object_entry(struct object *obj, void *data)
{
	add_entry(data, obj->id, engine_ino(obj, FILE_DIR), S_IFDIR, obj, FILE_DIR);
}

static void do_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct listing *l = calloc(1, sizeof(*l));
	enum file_kind kind;
	struct object *obj;

	if (!l)
		return (void)fuse_reply_err(req, ENOMEM);
	add_entry(l, ".", ino, S_IFDIR, NULL, FILE_DIR);
	add_entry(l, "..", INO_ROOT, S_IFDIR, NULL, FILE_DIR);
	engine_lock();
	if (ino == INO_ROOT) {
		add_entry(l, "queries", INO_QUERIES, S_IFDIR, NULL, FILE_DIR);
		add_entry(l, "executions", INO_EXECUTIONS, S_IFDIR, NULL, FILE_DIR);
	} else if (ino == INO_QUERIES) {
		engine_each(OBJECT_QUERY, add_object_entry, l);
	} else if (ino == INO_EXECUTIONS) {
		engine_each(OBJECT_EXECUTION, add_object_entry, l);
	} else if ((obj = engine_object_by_ino(ino, &kind)) && kind == FILE_DIR) {
		const struct name_entry *names = obj->type == OBJECT_QUERY ? query_files : execution_files;
		size_t count = obj->type == OBJECT_QUERY ? COUNT(query_files) : COUNT(execution_files);

		for (size_t i = 0; i < count; i++) {
			struct stat st;

			if (!file_present(obj, names[i].kind))
				continue;
			engine_fill_attr(obj, names[i].kind, NULL, &st);
			add_entry(l, names[i].name, engine_ino(obj, names[i].kind), st.st_mode, obj,
				  names[i].kind);
		}
	} else {
		engine_unlock();
		free(l);
		return (void)fuse_reply_err(req, ENOTDIR);
	}
	engine_unlock();
	fi->fh = (uint64_t)(uintptr_t)l;
	fi->cache_readdir = 0;
	fuse_reply_open(req, fi);
}

static void readdir_common(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi,
			   int plus)
{
	struct listing *l = (struct listing *)(uintptr_t)fi->fh;
	char *buf;
	size_t used = 0;

	if (off < 0 || (size_t)off > l->count)
		return (void)fuse_reply_err(req, EINVAL); /* not an offset handed out */
	buf = malloc(size ? size : 1);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	if (plus)
		engine_lock();
	for (size_t i = (size_t)off; i < l->count; i++) {
		struct listing_entry *le = &l->entries[i];
		struct fuse_entry_param e;
		size_t n;

		if (plus) {
			memset(&e, 0, sizeof(e));
			if (le->obj) {
				fill_object_entry(le->obj, le->kind, &e);
			} else if (le->ino == INO_QUERIES || le->ino == INO_EXECUTIONS) {
				e.ino = le->ino;
				fill_static_dir(le->ino, &e.attr);
				e.attr_timeout = e.entry_timeout = 3600.0;
			} else { /* "." and "..": no lookup */
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
	if (plus)
		engine_unlock();
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	readdir_common(req, size, off, fi, 0);
}

static void do_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)ino;
	readdir_common(req, size, off, fi, 1);
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
	enum file_kind kind;
	struct object *obj;
	int writing = (fi->flags & O_ACCMODE) != O_RDONLY;

	engine_lock();
	obj = engine_object_by_ino(ino, &kind);
	engine_unlock();
	if (!obj || kind == FILE_DIR || kind >= FILE_KIND_COUNT)
		return (void)fuse_reply_err(req, obj ? EISDIR : ENOENT);
	if (writing && kind != FILE_EXECUTE && kind != FILE_CANCEL)
		return (void)fuse_reply_err(req, EACCES);
	if (kind == FILE_CANCEL && (fi->flags & O_ACCMODE) != O_WRONLY)
		return (void)fuse_reply_err(req, EACCES);
	fi->noflush = 1; /* nothing to say at close(): see engine_release */
	engine_open(req, obj, kind, fi);
}

static void do_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	engine_read(req, handle_of(fi), size, off);
}

static void do_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);

	(void)ino;
	(void)off;
	if (h->kind == FILE_EXECUTE)
		engine_execute(req, (struct query *)h->obj, h, buf, size);
	else if (h->kind == FILE_CANCEL)
		engine_cancel(req, (struct execution *)h->obj, size);
	else
		fuse_reply_err(req, EBADF);
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
	/* the engine knows when a file's bytes change (see set_open_flags):
	 * no attribute request before every cached read */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	mount_time = time(NULL);
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
