/* fs.h - the FUSE low-level operations table. */
#ifndef EXECFS_FS_H
#define EXECFS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

/* The operations table handed to fuse_session_new(). */
extern const struct fuse_lowlevel_ops fs_operations;

/* The session, for the calls that reach the kernel unasked. */
void fs_set_session(struct fuse_session *se);

/* Asks the kernel to drop parent/name from its caches (engine_config's
 * forget_name). Never from a request's own thread. */
void fs_forget_name(fuse_ino_t parent, const char *name);

#endif
