/* result.c - a result's state and its bytes on local disk. */
#include "result.h"
#include "http.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long long cached_bytes;	/* complete results on disk */

static const char *const state_names[] = {
	[RESULT_ABSENT] = "absent",	    [RESULT_STREAMING] = "streaming",
	[RESULT_COMMITTING] = "committing", [RESULT_COMPLETE] = "complete",
	[RESULT_UNKEPT] = "unkept",	    [RESULT_FAILED] = "failed",
};

void result_set_state_locked(struct result *r, enum result_state state)
{
	if (r->state == state)
		return;
	log_debug("executions/%s/results.%s: %s -> %s", r->ex->obj.id, result_format_ext(r->format),
		  state_names[r->state], state_names[state]);
	r->state = state;
}

void result_init_locked(struct result *r, struct execution *ex, enum result_format format,
			off_t cached_size)
{
	r->ex = ex;
	r->format = format;
	r->fd = -1;
	r->lock_fd = -1;
	if (cached_size >= 0) { /* counted already, by the last pass over the directory */
		r->state = RESULT_COMPLETE;
		r->size = cached_size;
	}
}

int result_whole(const struct result *r)
{
	return r->state == RESULT_COMMITTING || r->state == RESULT_COMPLETE ||
	       r->state == RESULT_UNKEPT;
}

int result_busy(const struct result *r)
{
	return r->state == RESULT_STREAMING || r->state == RESULT_COMMITTING;
}

int result_set_fd_locked(struct result *r, int fd)
{
	int old = r->fd;

	r->fd = fd;
	if (old >= 0 && r->pins && r->retired_count < RESULT_RETIRED_MAX) {
		r->retired[r->retired_count++] = old; /* a reply still reads it */
		return -1;
	}
	return old;
}

int result_unpin_locked(struct result *r, int *closing)
{
	int n = 0;

	if (--r->pins == 0) {
		for (n = 0; n < r->retired_count; n++)
			closing[n] = r->retired[n];
		r->retired_count = 0;
	}
	return n;
}


int result_committed_locked(struct result *r)
{
	result_set_state_locked(r, RESULT_COMPLETE);
	cached_bytes += (unsigned long long)r->size;
	return r->opens == 0 ? result_set_fd_locked(r, -1) : -1;
}

void result_forget_locked(struct result *r)
{
	cached_bytes -= cached_bytes < (unsigned long long)r->size ? cached_bytes
								     : (unsigned long long)r->size;
	r->size = 0;
	result_set_state_locked(r, RESULT_ABSENT);
}


unsigned long long results_cached_bytes_locked(void)
{
	return cached_bytes;
}

void results_set_cached_bytes_locked(unsigned long long bytes)
{
	cached_bytes = bytes;
}

void result_free(struct result *r)
{
	if (r->fd >= 0)
		close(r->fd);
	if (r->lock_fd >= 0)
		close(r->lock_fd); /* a claim's lock goes with it */
	r->lock_fd = -1;
	for (int i = 0; i < r->retired_count; i++)
		close(r->retired[i]);
	r->fd = -1;
	r->retired_count = 0;
	free(r->error_message);
	r->error_message = NULL;
}
