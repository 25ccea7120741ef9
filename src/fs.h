/* fs.h - the FUSE low-level operations: the tree of DESIGN.md §2. */
#ifndef EXECFS_FS_H
#define EXECFS_FS_H

#include "engine.h"

/* The operations table handed to fuse_session_new(). */
extern const struct fuse_lowlevel_ops fs_operations;

/* Replies with a copy of data, safe against a concurrent release freeing it. */
void fs_reply_copy(fuse_req_t req, const char *data, size_t len);

#endif
