/* execute.h - queries/<qid>/execute and executions/<eid>/cancel: a write
 * becomes one request to the API (never resent: a run costs credits), and
 * the write is answered when the API has answered.
 */
#ifndef EXECFS_EXECUTE_H
#define EXECFS_EXECUTE_H

#include "core.h"

/* A write to execute on h: 0 when taken without a request (a piece of a
 * longer JSON request, the line break after one), -errno, or ENGINE_PARKED
 * until the API has answered the request it starts. */
int execute_write(fuse_req_t req, struct handle *h, const char *buf, size_t size);

/* A read of execute: the id of the run this open file started, from
 * wherever its first read starts. 0 with *data (malloc'd) and *len. */
int execute_read(struct handle *h, size_t size, off_t off, char **data, size_t *len);

/* The last close of execute: a JSON request whose end never came is
 * reported (nothing was sent). */
void execute_release(struct handle *h);

/* A write to cancel: -errno, or ENGINE_PARKED until the API has answered. */
int cancel_write(fuse_req_t req, struct execution *ex, size_t size);

#endif
