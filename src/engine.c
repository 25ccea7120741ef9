/* engine.c - the core's entry points: start and stop, and each FUSE
 * operation handed to the room that does it (tree, result, latest, poll,
 * execute). */
#include "engine.h"
#include "core.h"
#include "execute.h"
#include "http.h"
#include "index.h"
#include "latest.h"
#include "sweep.h"
#include "log.h"
#include "objects.h"
#include "park.h"
#include "poll.h"
#include "download.h"
#include "evict.h"
#include "reader.h"
#include "result.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct engine_config core_config;
time_t core_mount_time;

/* ---- open files ----------------------------------------------------------- */

/* Every open handle, so that those the kernel never releases (the mount
 * went away with files open) are freed at shutdown. Its own lock: handles
 * are made and freed outside the core lock. */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handle handles = {.prev = &handles, .next = &handles};

static struct handle *handle_new(struct object *obj, enum file_kind kind)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->obj = obj;
	h->kind = kind;
	core_lock();
	obj->handles++; /* kept in memory while open (sweep.c) */
	obj->used_ms = http_now_ms();
	core_unlock();
	pthread_mutex_lock(&handles_lock);
	h->next = &handles;
	h->prev = handles.prev;
	handles.prev->next = h;
	handles.prev = h;
	pthread_mutex_unlock(&handles_lock);
	return h;
}

static void handle_free(struct handle *h)
{
	pthread_mutex_lock(&handles_lock);
	h->prev->next = h->next;
	h->next->prev = h->prev;
	pthread_mutex_unlock(&handles_lock);
	core_lock();
	h->obj->handles--;
	core_unlock();
	free(h->text);
	free(h->pending);
	free(h);
}

void engine_release(struct handle *h)
{
	if (!h)
		return;
	if (tree_kind(h->kind)->role == ROLE_EXECUTE)
		execute_release(h);
	if (h->result) {
		int old;

		core_lock();
		old = reader_release_locked(h);
		core_unlock();
		if (old >= 0)
			close(old);
	}
	handle_free(h);
}

/* ---- names and attributes ------------------------------------------------ */

/* Another mount may have started a run of the query whose directory holds
 * ino since this one looked: its entry is read again if it changed (one
 * stat when not). Only where `last` is read: its lookup, readlink, the
 * query directory's listing. */
static void refresh_query(fuse_ino_t ino)
{
	struct query_entry entry;
	enum file_kind kind;
	struct object *obj;
	char qid[72] = "";

	core_lock();
	obj = tree_object_by_ino_locked(ino, &kind);
	if (obj && obj->type == OBJECT_QUERY)
		memcpy(qid, obj->id, sizeof(qid));
	core_unlock();
	if (!qid[0])
		return;
	index_read_query(qid, &entry);
	core_lock();
	index_query_locked(qid, &entry, 0);
	core_unlock();
}

int engine_lookup(fuse_req_t req, fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	struct query_entry entry;
	enum file_kind kind;
	struct object *obj;
	struct query *q;
	int k, rc = -ENOENT;

	memset(e, 0, sizeof(*e));
	if (parent == INO_ROOT) {
		if (strcmp(name, "queries") == 0)
			e->ino = INO_QUERIES;
		else if (strcmp(name, "executions") == 0)
			e->ino = INO_EXECUTIONS;
		else
			return -ENOENT;
		tree_fill_static_dir(e->ino, &e->attr);
		e->attr_timeout = e->entry_timeout = 3600.0;
		return 0;
	}
	if (parent == INO_EXECUTIONS)
		return tree_valid_eid(name) ? poll_lookup(req, name, e) : -ENOENT;
	if (parent == INO_QUERIES && !tree_valid_qid(name))
		return -ENOENT;
	if (parent == INO_QUERIES) {
		for (int tries = 0;; tries++) {
			index_read_query(name, &entry);
			core_lock();
			/* in memory when looked at, gone since (sweep.c): read it */
			if (!entry.in_table || entry.found || objects_query_locked(name, 0) || tries == 2)
				break;
			core_unlock();
		}
	} else {
		if (strcmp(name, "last") == 0)
			refresh_query(parent); /* the one name another mount changes */
		core_lock();
	}
	if (parent == INO_QUERIES) {
		if ((q = index_query_locked(name, &entry, 1))) {
			tree_fill_entry_locked(&q->obj, FILE_DIR, e);
			rc = 0;
		} else {
			rc = -ENOMEM;
		}
	} else if (!(obj = tree_object_by_ino_locked(parent, &kind))) {
		rc = -ENOENT;
	} else if (tree_kind(kind)->role != ROLE_DIR) {
		rc = -ENOTDIR;
	} else if ((k = tree_find_locked(obj, kind, name)) >= 0) {
		tree_fill_entry_locked(obj, (enum file_kind)k, e);
		rc = 0;
	}
	core_unlock();
	return rc;
}

int engine_entry(fuse_ino_t parent, fuse_ino_t ino, const char *name, struct fuse_entry_param *e)
{
	enum file_kind kind;
	struct object *obj;

	memset(e, 0, sizeof(*e));
	if (tree_is_static_dir(ino)) {
		e->ino = ino;
		tree_fill_static_dir(ino, &e->attr);
		e->attr_timeout = e->entry_timeout = 3600.0;
		return 0;
	}
	core_lock();
	obj = tree_object_by_ino_locked(ino, &kind);
	/* the listing was taken at opendir: the inode may have been freed and
	 * given to another object since; only the same name is the same file */
	if (obj && !tree_is_entry_locked(obj, kind, parent, name))
		obj = NULL;
	if (obj)
		tree_fill_entry_locked(obj, kind, e);
	core_unlock();
	return obj ? 0 : -ENOENT;
}

int engine_getattr(fuse_ino_t ino, struct handle *h, struct stat *st, double *timeout)
{
	enum file_kind kind;
	struct object *obj;

	if (tree_is_static_dir(ino)) {
		tree_fill_static_dir(ino, st);
		*timeout = 3600.0;
		return 0;
	}
	core_lock();
	obj = tree_object_by_ino_locked(ino, &kind);
	if (obj) {
		tree_fill_attr_locked(obj, kind, h, st);
		*timeout = tree_attr_timeout(kind);
	}
	core_unlock();
	return obj ? 0 : -ENOENT;
}

int engine_setattr(fuse_ino_t ino, int to_set, const struct stat *attr, struct handle *h,
		   struct stat *st, double *timeout)
{
	enum file_kind kind = FILE_DIR;
	struct object *obj;
	enum file_role role;
	int allowed = FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME;

	core_lock();
	obj = tree_object_by_ino_locked(ino, &kind);
	role = obj ? tree_kind(kind)->role : ROLE_DIR;
	/* `echo x > execute` truncates first: allowed, and a no-op */
	if (!obj || (role != ROLE_EXECUTE && role != ROLE_CANCEL) || (to_set & ~allowed) ||
	    ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != 0)) {
		core_unlock();
		return -EPERM;
	}
	tree_fill_attr_locked(obj, kind, h, st);
	core_unlock();
	*timeout = tree_attr_timeout(kind);
	return 0;
}

void engine_forget(fuse_ino_t ino, unsigned long long nlookup)
{
	enum file_kind kind;
	struct object *obj;

	core_lock();
	obj = tree_object_by_ino_locked(ino, &kind);
	if (obj)
		obj->nlookup -= nlookup < obj->nlookup ? nlookup : obj->nlookup;
	core_unlock();
}

int engine_readlink(fuse_ino_t ino, char *target, size_t size)
{
	enum file_kind kind;
	struct object *obj;
	int rc;

	refresh_query(ino); /* a query's one link is `last` */
	core_lock();
	obj = tree_object_by_ino_locked(ino, &kind);
	rc = obj ? tree_readlink_locked(obj, kind, target, size) : -ENOENT;
	core_unlock();
	return rc;
}

int engine_list(fuse_ino_t ino, void (*add)(void *ctx, const char *name, fuse_ino_t ino, mode_t mode),
		void *ctx)
{
	const char *kind = ino == INO_QUERIES ? "queries" : ino == INO_EXECUTIONS ? "executions" : NULL;
	size_t count = 0;
	char **names = NULL;
	int rc;

	/* every mount of the cache directory lists what any of them ran */
	if (kind)
		names = index_names(kind, &count);
	else
		refresh_query(ino);
	core_lock();
	rc = tree_list_locked(ino, (const char *const *)names, count, add, ctx);
	core_unlock();
	index_names_free(names, count);
	return rc;
}

void engine_statfs(struct statvfs *st)
{
	unsigned long long blocks, used;

	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = 4096;
	st->f_namemax = 255;
	core_lock();
	blocks = core_config.cache_size / st->f_frsize;
	used = (results_cached_bytes_locked() + st->f_frsize - 1) / st->f_frsize;
	st->f_blocks = blocks;
	st->f_bfree = st->f_bavail = blocks > used ? blocks - used : 0;
	st->f_files = objects_live_locked();
	core_unlock();
}

/* ---- opening, reading, writing -------------------------------------------- */

int engine_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	enum file_kind kind;
	struct object *obj;
	struct handle *h;
	enum file_role role;
	int access = fi->flags & O_ACCMODE, rc = 0;

	core_lock();
	obj = tree_object_by_ino_locked(ino, &kind);
	core_unlock();
	if (!obj)
		return -ENOENT;
	role = tree_kind(kind)->role;
	if (role == ROLE_DIR)
		return -EISDIR;
	if (access != O_RDONLY && role != ROLE_EXECUTE && role != ROLE_CANCEL)
		return -EACCES;
	if (role == ROLE_CANCEL && access != O_WRONLY)
		return -EACCES;
	fi->noflush = 1; /* nothing to say at close(): see execute_release */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	h = handle_new(obj, kind);
	if (!h)
		return -ENOMEM;
	switch (role) {
	case ROLE_LATEST:
		rc = latest_open(req, (struct query *)obj, h, fi, engine_release);
		break;
	case ROLE_RESULT:
		core_lock();
		reader_bind_locked(h, &((struct execution *)obj)->results[tree_kind(kind)->format]);
		core_unlock();
		rc = reader_open(req, h, fi, engine_release);
		break;
	case ROLE_STATUS:
		rc = poll_open_status(req, (struct execution *)obj, h, fi, engine_release);
		break;
	case ROLE_TEXT:
		core_lock();
		h->text = tree_file_text_locked(obj, kind, &h->text_len);
		core_unlock();
		break;
	default:
		break;
	}
	if (rc == 0)
		fi->fh = (uint64_t)(uintptr_t)h;
	return rc;
}

int engine_read(fuse_req_t req, struct handle *h, size_t size, off_t off, char **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	switch (tree_kind(h->kind)->role) {
	case ROLE_RESULT:
	case ROLE_LATEST:
		return reader_read(req, h, size, off);
	case ROLE_EXECUTE:
		return execute_read(h, size, off, data, len);
	default:
		/* h->text is the open's own: made at open, freed at release */
		if (!h->text || (size_t)off >= h->text_len)
			return 0;
		*len = h->text_len - (size_t)off < size ? h->text_len - (size_t)off : size;
		*data = malloc(*len);
		if (!*data)
			return -ENOMEM;
		memcpy(*data, h->text + off, *len);
		return 0;
	}
}

int engine_write(fuse_req_t req, struct handle *h, const char *buf, size_t size)
{
	switch (tree_kind(h->kind)->role) {
	case ROLE_EXECUTE:
		return execute_write(req, h, buf, size);
	case ROLE_CANCEL:
		return cancel_write(req, (struct execution *)h->obj, size);
	default:
		return -EBADF;
	}
}

/* ---- start and stop ------------------------------------------------------- */

static void sweep_timeouts(void *data, int cancelled)
{
	(void)data;
	if (cancelled)
		return;
	park_expire(http_now_ms());
	http_later(250, sweep_timeouts, NULL);
}

/* Whether the mount with our device number is still in the mount table. */
static int still_mounted(void)
{
	char line[4096], field[40];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int found = 0;

	if (!f)
		return 1;
	snprintf(field, sizeof(field), " %s ", core_config.mount_dev);
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ' '); /* after the mount id */

		p = p ? strchr(p + 1, ' ') : NULL; /* after the parent id */
		found = p && strncmp(p, field, strlen(field)) == 0;
	}
	fclose(f);
	return found;
}

/* A lazy unmount (umount -l, fusermount3 -uz) leaves the daemon running for
 * as long as files stay open: readers parked here would wait for ever. The
 * watcher notices the mount is gone and ends them, so the last file closes
 * and the daemon exits. */
static void watch_mount(void *data, int cancelled)
{
	(void)data;
	if (cancelled)
		return;
	if (!still_mounted()) {
		log_info("the mount is gone (lazy unmount): ending waiting reads");
		park_detach(ENOTCONN);
		return;
	}
	http_later(500, watch_mount, NULL);
}

int engine_init(const struct engine_config *cfg)
{
	int rc;

	core_config = *cfg;
	core_mount_time = time(NULL);
	rc = worker_start();
	if (rc) {
		log_error("cannot start the background thread: %s", strerror(-rc));
		return rc;
	}
	evict_now(); /* cache_size may be smaller than last time */
	sweep_start();
	if (core_config.timeout)
		http_later(250, sweep_timeouts, NULL);
	if (core_config.mount_dev[0])
		http_later(500, watch_mount, NULL);
	return 0;
}

/* Downloads cut short by the stop: what they hold goes with them. */
static void discard_downloads(struct object *obj, void *data)
{
	struct execution *ex = (struct execution *)obj;

	(void)data;
	for (int f = 0; f < FORMAT_COUNT; f++)
		download_discard(&ex->results[f]);
}

void engine_shutdown(void)
{
	/* writes are freed by their requests, which http_stop() ends */
	park_end_all(ENOTCONN);
	http_stop();
	sweep_wait_forgets();
	worker_stop(); /* commits and entries still queued are done first */
	index_flush();
	while (handles.next != &handles)
		handle_free(handles.next);
	core_lock();
	objects_each_locked(OBJECT_EXECUTION, discard_downloads, NULL);
	core_unlock();
	objects_free_all();
}
