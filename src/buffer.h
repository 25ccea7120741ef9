/* buffer.h - a growable byte buffer with a hard size cap.
 *
 * Nothing in execfs grows without a limit: every buffer has a cap, and an
 * append that would pass it fails with -E2BIG, leaving the buffer as it was.
 */
#ifndef EXECFS_BUFFER_H
#define EXECFS_BUFFER_H

#include <stddef.h>

struct buffer {
	char *data;	/* always NUL-terminated when not NULL */
	size_t len;
	size_t alloc;
	size_t cap;	/* most bytes it may hold */
};

/* An empty buffer that may grow to cap bytes. Allocates nothing yet. */
void buffer_init(struct buffer *b, size_t cap);

/* Appends len bytes. Returns 0, -E2BIG past the cap, or -ENOMEM. */
int buffer_append(struct buffer *b, const void *data, size_t len);

/* Appends a NUL-terminated string. Same returns as buffer_append(). */
int buffer_append_str(struct buffer *b, const char *s);

/* Forgets the contents, keeps the memory. */
void buffer_reset(struct buffer *b);

/* Frees the memory; the buffer is empty and reusable with the same cap. */
void buffer_free(struct buffer *b);

#endif
