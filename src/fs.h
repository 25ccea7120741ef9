/* fs.h - the FUSE low-level operations table. */
#ifndef EXECFS_FS_H
#define EXECFS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

/* The operations table handed to fuse_session_new(). */
extern const struct fuse_lowlevel_ops fs_operations;

#endif
