/* tree.h - the tree of names: which files each directory holds, their
 * inodes, attributes and the text of the small generated files.
 *
 * One table (tree_kind) describes every file kind; every other place asks it
 * instead of listing kinds again.
 */
#ifndef EXECFS_TREE_H
#define EXECFS_TREE_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "backend.h"

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
	/* queries/<qid>/stream/: latest.* as it arrives */
	FILE_LATEST_STREAM_DIR,
	FILE_STREAM_LATEST_CSV,
	FILE_STREAM_LATEST_JSON,
	FILE_STREAM_LATEST_NDJSON,
	/* executions/<eid>/stream/: results.* as they arrive */
	FILE_RESULTS_STREAM_DIR,
	FILE_STREAM_RESULTS_CSV,
	FILE_STREAM_RESULTS_JSON,
	FILE_STREAM_RESULTS_NDJSON,
	FILE_KIND_COUNT
};

#define INO_ROOT 1
#define INO_QUERIES 2
#define INO_EXECUTIONS 3
#define INO_FIRST_OBJECT 16
#define INO_PER_OBJECT 32

/* What a file is for: how it is opened, read and shown. */
enum file_role {
	ROLE_DIR,
	ROLE_RESULT,	/* executions/<eid>/results.*: a result, waited for */
	ROLE_LATEST,	/* queries/<qid>/latest.*: the latest run's result */
	ROLE_EXECUTE,	/* write a request, read the run's id back */
	ROLE_CANCEL,	/* write anything */
	ROLE_LINK,	/* a symlink */
	ROLE_STATUS,	/* generated from the status, asked afresh at open */
	ROLE_TEXT,	/* generated from what the mount knows */
};

struct file_kind_info {
	const char *name;	/* its name in its directory, NULL for FILE_DIR */
	int of_execution;	/* 1: under /executions/<eid>, 0: under /queries/<qid> */
	enum file_kind parent;	/* the directory holding it: FILE_DIR or a stream/ */
	enum file_role role;
	enum result_format format; /* ROLE_RESULT, ROLE_LATEST */
	int stream;		/* ROLE_RESULT, ROLE_LATEST: read as it arrives (stream/),
				 * not opened whole */
	mode_t mode;
};

/* The table's row for kind (kind < FILE_KIND_COUNT). */
const struct file_kind_info *tree_kind(enum file_kind kind);

/* Whether a name is a valid query or execution id, checked before any
 * request: digits without a leading zero; [A-Za-z0-9_-]{1,64} that the
 * backend accepts. */
int tree_valid_qid(const char *name);
int tree_valid_eid(const char *name);

struct object;
struct handle;
struct result;

/* The object and kind of an inode (NULL: no such object). */
struct object *tree_object_by_ino_locked(fuse_ino_t ino, enum file_kind *kind);

/* Whether obj's file kind is the one called name in directory parent. */
int tree_is_entry_locked(struct object *obj, enum file_kind kind, fuse_ino_t parent, const char *name);

/* The kind of the file called name in obj's directory dir (FILE_DIR or a
 * stream/ directory), if it exists now; -1 otherwise. */
int tree_find_locked(struct object *obj, enum file_kind dir, const char *name);

/* The attributes of a file, and what a lookup of it answers. h is the open
 * file asking, or NULL. */
void tree_fill_attr_locked(struct object *obj, enum file_kind kind, struct handle *h, struct stat *st);
void tree_fill_entry_locked(struct object *obj, enum file_kind kind, struct fuse_entry_param *e);

/* How long the kernel may keep a file's attributes: those that change
 * (sizes, states, links) are never cached. */
double tree_attr_timeout(enum file_kind kind);

/* The root, /queries and /executions. */
int tree_is_static_dir(fuse_ino_t ino);
void tree_fill_static_dir(fuse_ino_t ino, struct stat *st);

/* The target of a symlink (0), or -errno. */
int tree_readlink_locked(struct object *obj, enum file_kind kind, char *target, size_t size);

/* The content of a small generated file (malloc'd, *len set). */
char *tree_file_text_locked(struct object *obj, enum file_kind kind, size_t *len);

/* The result a results.* or latest.* file shows: the open's snapshot, else
 * the one the kernel caches for the inode, else the latest known. */
struct result *tree_shown_result_locked(struct object *obj, enum file_kind kind, struct handle *h);

/* Calls add for each entry of directory ino, "." and ".." first; -ENOTDIR
 * when ino is not a directory. /queries and /executions list the index's
 * names on disk (disk, sorted, count of them) with the table's. A name not
 * in the table gets an inode number that no lookup gives (readdir's d_ino
 * must not be 0; a lookup gives the real one). */
int tree_list_locked(fuse_ino_t ino, const char *const *disk, size_t count,
		     void (*add)(void *ctx, const char *name, fuse_ino_t ino, mode_t mode), void *ctx);

#endif
