/* park.c - parked FUSE requests: park, wake, interrupt, deadlines, replies. */
#include "park.h"
#include "lock.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static struct waiter waiters = {.prev = &waiters, .next = &waiters};
static int detached_err;	/* the mount is gone: nothing waits any more */

static void unlink_locked(struct waiter *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->prev = w->next = NULL;
	if (w->count)
		(*w->count)--;
}

static void link_locked(struct waiter *w)
{
	w->next = &waiters;
	w->prev = waiters.prev;
	waiters.prev->next = w;
	waiters.prev = w;
	if (w->count)
		(*w->count)++;
	w->state = WAIT_LISTED;
}

static void drop_handle(struct waiter *w)
{
	if (w->handle && w->drop)
		w->drop(w->handle);
	w->handle = NULL;
}

static void reply_data(struct waiter *w)
{
	if (w->data_len == 0 || w->data) {
		fuse_reply_buf(w->req, w->data, w->data_len);
	} else {
		struct fuse_bufvec buf = FUSE_BUFVEC_INIT(w->data_len);

		buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		buf.buf[0].fd = w->fd;
		buf.buf[0].pos = w->data_off;
		fuse_reply_data(w->req, &buf, FUSE_BUF_SPLICE_MOVE);
	}
	free(w->data);
	w->data = NULL;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

/* Sends the decided reply. Lock not held. */
static void send_reply(struct waiter *w)
{
	if (!w->err && w->prepare)
		w->prepare(w);
	if (w->err) {
		drop_handle(w);
		free(w->data);
		w->data = NULL;
		if (w->fd >= 0)
			close(w->fd);
		w->fd = -1;
		fuse_reply_err(w->req, w->err);
		return;
	}
	switch (w->reply) {
	case PARK_REPLY_DATA:
		reply_data(w);
		break;
	case PARK_REPLY_OPEN:
		w->fi.fh = (uint64_t)(uintptr_t)w->handle;
		if (fuse_reply_open(w->req, &w->fi) == -ENOENT)
			drop_handle(w); /* the opener went away */
		break;
	case PARK_REPLY_ENTRY:
		fuse_reply_entry(w->req, &w->entry);
		break;
	case PARK_REPLY_WRITE:
		fuse_reply_write(w->req, w->size);
		break;
	}
}

void park_retarget_locked(struct waiter *w, void *target, int *count)
{
	if (w->state == WAIT_LISTED && w->count)
		(*w->count)--;
	w->target = target;
	w->count = count;
	if (w->state == WAIT_LISTED && w->count)
		(*w->count)++;
}

void park_take_locked(struct waiter *w, struct waiter **ready)
{
	if (w->state == WAIT_LISTED)
		unlink_locked(w);
	w->state = WAIT_DONE;
	w->next = *ready;
	*ready = w;
}

void park_wake_locked(void *target, struct waiter **ready)
{
	struct waiter *w, *next;

	for (w = waiters.next; w != &waiters; w = next) {
		next = w->next;
		if (w->target == target && w->ready(w))
			park_take_locked(w, ready);
	}
}

void park_send(struct waiter *list)
{
	while (list) {
		struct waiter *w = list;

		list = w->next;
		/* waits for an interrupt handler running on w, and stops new ones */
		if (w->interruptible)
			fuse_req_interrupt_func(w->req, NULL, NULL);
		send_reply(w);
		if (!w->owned_by_request)
			free(w);
	}
}

/* libfuse calls this with the request's own lock held. Only a listed waiter
 * is answered here (libfuse holds a reference on that path); one still being
 * parked is only marked, and park() answers it once libfuse lets go. */
static void on_interrupt(fuse_req_t req, void *data)
{
	struct waiter *w = data;

	core_lock();
	if (w->state == WAIT_DONE) {
		core_unlock();
		return;
	}
	if (w->state == WAIT_NEW) {
		w->state = WAIT_DONE;
		w->interrupted = 1;
		core_unlock();
		return;
	}
	unlink_locked(w);
	w->state = WAIT_DONE;
	core_unlock();
	/* off the list, w is ours alone */
	drop_handle(w);
	fuse_reply_err(req, EINTR);
	free(w);
}

struct waiter *park_waiter_new(fuse_req_t req, enum park_reply reply, void *target,
			       int (*ready)(struct waiter *w))
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w) {
		fuse_reply_err(req, ENOMEM);
		return NULL;
	}
	w->req = req;
	w->reply = reply;
	w->target = target;
	w->ready = ready;
	w->fd = -1;
	w->interruptible = reply != PARK_REPLY_WRITE;
	return w;
}

int park(struct waiter *w)
{
	struct waiter *ready = NULL;

	w->state = WAIT_NEW;
	if (w->interruptible)
		fuse_req_interrupt_func(w->req, on_interrupt, w);
	core_lock();
	if (w->interrupted) {
		core_unlock();
		fuse_req_interrupt_func(w->req, NULL, NULL);
		drop_handle(w);
		fuse_reply_err(w->req, EINTR);
		if (!w->owned_by_request)
			free(w);
		return 0;
	}
	if (detached_err) {
		w->err = detached_err;
		park_take_locked(w, &ready);
	} else if (w->reply != PARK_REPLY_WRITE && w->ready(w)) {
		park_take_locked(w, &ready);
	} else {
		link_locked(w);
	}
	core_unlock();
	park_send(ready);
	return ready == NULL;
}

void park_expire(long long now_ms)
{
	struct waiter *w, *next, *ready = NULL;

	core_lock();
	for (w = waiters.next; w != &waiters; w = next) {
		next = w->next;
		if (w->deadline_ms && now_ms >= w->deadline_ms && w->ready(w))
			park_take_locked(w, &ready);
	}
	core_unlock();
	park_send(ready);
}

static void end_all(int err, int detach)
{
	struct waiter *w, *next, *ready = NULL;

	core_lock();
	if (detach)
		detached_err = err;
	for (w = waiters.next; w != &waiters; w = next) {
		next = w->next;
		w->err = err;
		w->done = 1;
		park_take_locked(w, &ready);
	}
	core_unlock();
	park_send(ready);
}

void park_end_all(int err)
{
	end_all(err, 0);
}

void park_detach(int err)
{
	end_all(err, 1);
}
