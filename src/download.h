/* download.h - one result's download: its pages, in order, decoded into the
 * cache file as they arrive, the next page asked for while the current one
 * streams, then the commit. One download per result, whatever the readers.
 */
#ifndef EXECFS_DOWNLOAD_H
#define EXECFS_DOWNLOAD_H

#include "core.h"

/* Starts the download of r unless one is under way or r is complete. The
 * cache file is created on the engine thread (no disk I/O here). */
void download_start_locked(struct result *r);

#endif
