/* share.h - one download per result across the daemons sharing a cache
 * directory: this daemon downloads it (download.c), or follows the file of
 * the daemon that does, reading it as it grows, until that daemon commits
 * it; if that daemon fails or dies, this one claims the download again.
 */
#ifndef EXECFS_SHARE_H
#define EXECFS_SHARE_H

#include "core.h"

/* Gets r's bytes onto local disk unless that is under way or done: r
 * becomes RESULT_STREAMING now; who downloads is decided on the engine
 * thread (the claim reads the disk). */
void share_start_locked(struct result *r);

#endif
