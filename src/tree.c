/* tree.c - names, inodes, attributes and generated text of the tree. */
#include "tree.h"
#include "core.h"
#include "objects.h"
#include "result.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The block size results report: what tools take as their read size. */
#define RESULT_READ_BLOCK (1024 * 1024)

#define DIR S_IFDIR | 0555
#define RO S_IFREG | 0444
#define Q 0 /* under queries/<qid> */
#define X 1 /* under executions/<eid> */

static const struct file_kind_info kinds[FILE_KIND_COUNT] = {
	[FILE_DIR] = {NULL, Q, FILE_DIR, ROLE_DIR, FORMAT_CSV, 0, DIR},
	[FILE_LATEST_CSV] = {"latest.csv", Q, FILE_DIR, ROLE_LATEST, FORMAT_CSV, 0, RO},
	[FILE_LATEST_JSON] = {"latest.json", Q, FILE_DIR, ROLE_LATEST, FORMAT_JSON, 0, RO},
	[FILE_LATEST_NDJSON] = {"latest.ndjson", Q, FILE_DIR, ROLE_LATEST, FORMAT_NDJSON, 0, RO},
	[FILE_EXECUTE] = {"execute", Q, FILE_DIR, ROLE_EXECUTE, FORMAT_CSV, 0, S_IFREG | 0644},
	[FILE_LAST] = {"last", Q, FILE_DIR, ROLE_LINK, FORMAT_CSV, 0, S_IFLNK | 0777},
	[FILE_QUERY_ERROR] = {"error", Q, FILE_DIR, ROLE_TEXT, FORMAT_CSV, 0, RO},
	[FILE_STATUS] = {"status", X, FILE_DIR, ROLE_STATUS, FORMAT_CSV, 0, RO},
	[FILE_STATUS_JSON] = {"status.json", X, FILE_DIR, ROLE_STATUS, FORMAT_CSV, 0, RO},
	[FILE_RESULTS_CSV] = {"results.csv", X, FILE_DIR, ROLE_RESULT, FORMAT_CSV, 0, RO},
	[FILE_RESULTS_JSON] = {"results.json", X, FILE_DIR, ROLE_RESULT, FORMAT_JSON, 0, RO},
	[FILE_RESULTS_NDJSON] = {"results.ndjson", X, FILE_DIR, ROLE_RESULT, FORMAT_NDJSON, 0, RO},
	[FILE_EXEC_ERROR] = {"error", X, FILE_DIR, ROLE_STATUS, FORMAT_CSV, 0, RO},
	[FILE_CANCEL] = {"cancel", X, FILE_DIR, ROLE_CANCEL, FORMAT_CSV, 0, S_IFREG | 0200},
	[FILE_QUERY_LINK] = {"query", X, FILE_DIR, ROLE_LINK, FORMAT_CSV, 0, S_IFLNK | 0777},
	[FILE_LATEST_STREAM_DIR] = {"stream", Q, FILE_DIR, ROLE_DIR, FORMAT_CSV, 0, DIR},
	[FILE_STREAM_LATEST_CSV] = {"latest.csv", Q, FILE_LATEST_STREAM_DIR, ROLE_LATEST, FORMAT_CSV, 1, RO},
	[FILE_STREAM_LATEST_JSON] = {"latest.json", Q, FILE_LATEST_STREAM_DIR, ROLE_LATEST, FORMAT_JSON, 1, RO},
	[FILE_STREAM_LATEST_NDJSON] = {"latest.ndjson", Q, FILE_LATEST_STREAM_DIR, ROLE_LATEST, FORMAT_NDJSON, 1, RO},
	[FILE_RESULTS_STREAM_DIR] = {"stream", X, FILE_DIR, ROLE_DIR, FORMAT_CSV, 0, DIR},
	[FILE_STREAM_RESULTS_CSV] = {"results.csv", X, FILE_RESULTS_STREAM_DIR, ROLE_RESULT, FORMAT_CSV, 1, RO},
	[FILE_STREAM_RESULTS_JSON] = {"results.json", X, FILE_RESULTS_STREAM_DIR, ROLE_RESULT, FORMAT_JSON, 1, RO},
	[FILE_STREAM_RESULTS_NDJSON] = {"results.ndjson", X, FILE_RESULTS_STREAM_DIR, ROLE_RESULT, FORMAT_NDJSON, 1, RO},
};

const struct file_kind_info *tree_kind(enum file_kind kind)
{
	return &kinds[kind];
}

int tree_valid_qid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 18 || name[0] == '0')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	return 1;
}

int tree_valid_eid(const char *name)
{
	size_t len = strlen(name);
	const struct backend *b = core_config.backend;

	if (len == 0 || len > 64)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return !b || !b->ops->eid_valid || b->ops->eid_valid(name);
}

/* The inode of obj's file of kind. */
static fuse_ino_t tree_ino(const struct object *obj, enum file_kind kind)
{
	return INO_FIRST_OBJECT + (fuse_ino_t)obj->index * INO_PER_OBJECT + kind;
}

struct object *tree_object_by_ino_locked(fuse_ino_t ino, enum file_kind *kind)
{
	struct object *obj;
	unsigned long long slot;

	if (ino < INO_FIRST_OBJECT)
		return NULL;
	slot = (unsigned long long)(ino - INO_FIRST_OBJECT) / INO_PER_OBJECT;
	if (slot >= objects_count_locked()) /* also the unlisted_ino() numbers */
		return NULL;
	obj = objects_at_locked((unsigned)slot);
	*kind = (enum file_kind)((ino - INO_FIRST_OBJECT) % INO_PER_OBJECT);
	if (!obj || *kind >= FILE_KIND_COUNT)
		return NULL;
	/* a query's inode never names an execution's file, nor the reverse */
	if (*kind != FILE_DIR && kinds[*kind].of_execution != (obj->type == OBJECT_EXECUTION))
		return NULL;
	return obj;
}

int tree_is_entry_locked(struct object *obj, enum file_kind kind, fuse_ino_t parent, const char *name)
{
	if (kind == FILE_DIR)
		return parent == (obj->type == OBJECT_QUERY ? INO_QUERIES : INO_EXECUTIONS) &&
		       strcmp(obj->id, name) == 0;
	return parent == tree_ino(obj, kinds[kind].parent) && strcmp(kinds[kind].name, name) == 0;
}

/* Whether a file exists right now under its object. */
static int present_locked(struct object *obj, enum file_kind kind)
{
	if (kind == FILE_DIR)
		return 1;
	if (kinds[kind].of_execution != (obj->type == OBJECT_EXECUTION))
		return 0;
	if (kind == FILE_LAST)
		return ((struct query *)obj)->last[0] != '\0';
	if (kind == FILE_QUERY_LINK)
		return ((struct execution *)obj)->query_id[0] != '\0';
	return 1;
}

int tree_find_locked(struct object *obj, enum file_kind dir, const char *name)
{
	for (int k = 1; k < FILE_KIND_COUNT; k++)
		if (kinds[k].parent == dir && strcmp(name, kinds[k].name) == 0 &&
		    present_locked(obj, (enum file_kind)k))
			return k;
	return -1;
}

double tree_attr_timeout(enum file_kind kind)
{
	enum file_role role = kinds[kind].role;

	return role == ROLE_DIR || role == ROLE_EXECUTE || role == ROLE_CANCEL ? 1.0 : 0.0;
}

int tree_is_static_dir(fuse_ino_t ino)
{
	return ino == INO_ROOT || ino == INO_QUERIES || ino == INO_EXECUTIONS;
}

void tree_fill_static_dir(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_atime = st->st_mtime = st->st_ctime = core_mount_time;
}

static int link_target_locked(struct object *obj, enum file_kind kind, char *out, size_t size)
{
	if (kind == FILE_LAST)
		return snprintf(out, size, "../../executions/%s", ((struct query *)obj)->last);
	return snprintf(out, size, "../../queries/%s", ((struct execution *)obj)->query_id);
}

int tree_readlink_locked(struct object *obj, enum file_kind kind, char *target, size_t size)
{
	if (kinds[kind].role != ROLE_LINK)
		return -EINVAL;
	if (!present_locked(obj, kind))
		return -EINVAL;
	link_target_locked(obj, kind, target, size);
	return 0;
}

struct result *tree_shown_result_locked(struct object *obj, enum file_kind kind, struct handle *h)
{
	const struct file_kind_info *info = &kinds[kind];
	struct query *q = (struct query *)obj;
	struct execution *ex;

	if (h && h->result)
		return h->result;
	if (info->role == ROLE_RESULT)
		return &((struct execution *)obj)->results[info->format];
	if (info->role != ROLE_LATEST)
		return NULL;
	/* while opens read it through the page cache, the inode's size is
	 * theirs: the kernel bounds cached reads by it */
	if (q->cached_opens[info->format])
		return q->page_owner[info->format];
	ex = q->latest[0] ? objects_execution_locked(q->latest) : NULL;
	return ex ? &ex->results[info->format] : NULL;
}

static char *text_line(const char *s, size_t *len)
{
	char *out;

	if (!s || !*s) {
		*len = 0;
		return strdup("");
	}
	*len = strlen(s);
	out = malloc(*len + 2);
	if (!out)
		return NULL;
	memcpy(out, s, *len);
	if (s[*len - 1] != '\n')
		out[(*len)++] = '\n';
	out[*len] = '\0';
	return out;
}

char *tree_file_text_locked(struct object *obj, enum file_kind kind, size_t *len)
{
	struct execution *ex = (struct execution *)obj;
	struct query *q = (struct query *)obj;

	switch (kind) {
	case FILE_STATUS:
		return text_line(exec_state_word(ex->state), len);
	case FILE_STATUS_JSON:
		return text_line(ex->document, len);
	case FILE_EXEC_ERROR:
		if (ex->error)
			return text_line(ex->error, len);
		for (int f = 0; f < FORMAT_COUNT; f++)
			if (ex->results[f].error_message)
				return text_line(ex->results[f].error_message, len);
		return text_line(exec_state_is_terminal(ex->state) ? NULL : ex->wait_note, len);
	case FILE_QUERY_ERROR:
		return text_line(q->error, len);
	default:
		return text_line(NULL, len);
	}
}

void tree_fill_attr_locked(struct object *obj, enum file_kind kind, struct handle *h, struct stat *st)
{
	const struct file_kind_info *info = &kinds[kind];
	struct result *r;
	char target[256];
	size_t len = 0;

	memset(st, 0, sizeof(*st));
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_nlink = 1;
	st->st_atime = st->st_mtime = st->st_ctime = core_mount_time;
	st->st_ino = tree_ino(obj, kind);
	st->st_mode = info->mode;
	switch (info->role) {
	case ROLE_DIR:
		st->st_nlink = 2;
		break;
	case ROLE_EXECUTE:
	case ROLE_CANCEL:
		break;
	case ROLE_LINK:
		st->st_size = link_target_locked(obj, kind, target, sizeof(target));
		break;
	case ROLE_RESULT:
	case ROLE_LATEST:
		r = tree_shown_result_locked(obj, kind, h);
		st->st_size = r && result_whole(r) ? r->size : 0;
		/* when its run ended: make and rsync see a new result as newer;
		 * before that is known, the epoch: never newer than it is, so
		 * that rsync -au, make and find -newer take it when it comes */
		st->st_atime = st->st_mtime = st->st_ctime = r ? r->ex->ended_at : 0;
		/* tools size their reads by it (cmp, Python's open): a read is a
		 * round trip through the daemon while the result is downloading */
		st->st_blksize = RESULT_READ_BLOCK;
		break;
	case ROLE_STATUS:
	case ROLE_TEXT:
		free(tree_file_text_locked(obj, kind, &len));
		st->st_size = (off_t)len;
		break;
	}
	st->st_blocks = (st->st_size + 511) / 512;
}

void tree_fill_entry_locked(struct object *obj, enum file_kind kind, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	objects_looked_up_locked(obj); /* every entry filled is sent */
	e->ino = tree_ino(obj, kind);
	e->attr_timeout = tree_attr_timeout(kind);
	e->entry_timeout = kinds[kind].role == ROLE_LINK ? 0.0 : 1.0;
	tree_fill_attr_locked(obj, kind, NULL, &e->attr);
}

struct list_ctx {
	void (*add)(void *ctx, const char *name, fuse_ino_t ino, mode_t mode);
	void *ctx;
	const char *const *disk;
	size_t count;
};

static int by_name(const void *key, const void *item)
{
	return strcmp(key, *(const char *const *)item);
}

static void list_object_locked(struct object *obj, void *data)
{
	struct list_ctx *l = data;

	if (obj->type == OBJECT_QUERY ? !((struct query *)obj)->listed
				      : !((struct execution *)obj)->known)
		return;
	if (l->count && bsearch(obj->id, l->disk, l->count, sizeof(*l->disk), by_name))
		return; /* listed from the disk */
	l->add(l->ctx, obj->id, tree_ino(obj, FILE_DIR), S_IFDIR);
}

/* An inode number for readdir's d_ino only, above every object's. */
static fuse_ino_t unlisted_ino(const char *id)
{
	unsigned long long h = 1469598103934665603ULL;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ULL;
	return (fuse_ino_t)((1ULL << 62) | (h & ((1ULL << 61) - 1)));
}

static void list_disk_locked(struct list_ctx *l, enum object_type type)
{
	for (size_t i = 0; i < l->count; i++) {
		const char *id = l->disk[i];
		struct object *obj;

		if (type == OBJECT_QUERY ? !tree_valid_qid(id) : !tree_valid_eid(id))
			continue;
		obj = type == OBJECT_QUERY ? (struct object *)objects_query_locked(id, 0)
					   : (struct object *)objects_execution_locked(id);
		l->add(l->ctx, id, obj ? tree_ino(obj, FILE_DIR) : unlisted_ino(id), S_IFDIR);
	}
}

int tree_list_locked(fuse_ino_t ino, const char *const *disk, size_t count,
		     void (*add)(void *ctx, const char *name, fuse_ino_t ino, mode_t mode), void *ctx)
{
	struct list_ctx l = {add, ctx, disk, count};
	enum file_kind kind;
	struct object *obj = NULL;

	if (!tree_is_static_dir(ino) &&
	    (!(obj = tree_object_by_ino_locked(ino, &kind)) || kinds[kind].role != ROLE_DIR ||
	     !present_locked(obj, kind)))
		return -ENOTDIR;
	add(ctx, ".", ino, S_IFDIR);
	add(ctx, "..", obj && kind != FILE_DIR ? tree_ino(obj, FILE_DIR) : INO_ROOT, S_IFDIR);
	if (ino == INO_ROOT) {
		add(ctx, "queries", INO_QUERIES, S_IFDIR);
		add(ctx, "executions", INO_EXECUTIONS, S_IFDIR);
	} else if (ino == INO_QUERIES || ino == INO_EXECUTIONS) {
		enum object_type type = ino == INO_QUERIES ? OBJECT_QUERY : OBJECT_EXECUTION;

		list_disk_locked(&l, type);
		objects_each_locked(type, list_object_locked, &l);
	} else {
		for (int k = 1; k < FILE_KIND_COUNT; k++)
			if (kinds[k].parent == kind && present_locked(obj, (enum file_kind)k))
				add(ctx, kinds[k].name, tree_ino(obj, (enum file_kind)k), kinds[k].mode & S_IFMT);
	}
	return 0;
}
