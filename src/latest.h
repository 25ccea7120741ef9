/* latest.h - queries/<qid>/latest.*: which run holds the query's latest
 * result (asked of the API at most every max_age seconds); an open binds to
 * that run's result and is then read as reader.c reads any result.
 */
#ifndef EXECFS_LATEST_H
#define EXECFS_LATEST_H

#include "core.h"

/* Opens latest.* for h: 0 when answered now (fi set), else ENGINE_PARKED
 * until the API names the run (drop lets go of h if the open fails). */
int latest_open(fuse_req_t req, struct query *q, struct handle *h, struct fuse_file_info *fi,
		void (*drop)(struct handle *h));

#endif
