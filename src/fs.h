/* fs.h - the FUSE low-level operations: the tree of DESIGN.md §2. */
#ifndef EXECFS_FS_H
#define EXECFS_FS_H

#include "engine.h"

/* The operations table handed to fuse_session_new(). */
extern const struct fuse_lowlevel_ops fs_operations;

#endif
