/* buffer.c - a growable byte buffer with a hard size cap. */
#include "buffer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void buffer_init(struct buffer *b, size_t cap)
{
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
	b->cap = cap;
}

int buffer_append(struct buffer *b, const void *data, size_t len)
{
	if (len > b->cap || b->len > b->cap - len)
		return -E2BIG;
	if (b->len + len + 1 > b->alloc) {
		size_t want = b->alloc ? b->alloc : 256;
		char *grown;

		while (want < b->len + len + 1)
			want *= 2;
		grown = realloc(b->data, want);
		if (!grown)
			return -ENOMEM;
		b->data = grown;
		b->alloc = want;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buffer_append_str(struct buffer *b, const char *s)
{
	return buffer_append(b, s, strlen(s));
}

void buffer_reset(struct buffer *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buffer_free(struct buffer *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->alloc = 0;
}
