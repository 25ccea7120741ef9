/* fuzz.h - what the libFuzzer targets share: a response made from fuzz
 * bytes, and a driver that feeds result pages to a decoder the way the
 * engine does (src/engine.c: download_attempt, download_data,
 * download_request_done, finish_download), in chunks the input chooses.
 *
 * A streamed input is a 4-byte plan, then pages:
 *
 *	byte 0		mode: bits 0-1 the format (target's own use), bit 2 every
 *			page's first attempt breaks after its first chunk and the
 *			page starts again (a retry), bit 3 page_end sees the body
 *			(as the unit tests pass it; the engine passes none)
 *	bytes 1-3	chunk lengths, used in turn: 0 the rest of the page,
 *			1-63 that many bytes, 64-127 (b - 63) * 64 bytes,
 *			128-255 1 to 8 bytes
 *	pages		separated by FUZZ_PAGE_SEP; with headers, a page is
 *			"header lines\r\n\r\nbody" (no blank line: no headers)
 *
 * A broken promise of a decoder (a merged document that is not JSON, an
 * NDJSON line that is not one value) calls abort(), so libFuzzer reports
 * it as a crash.
 */
#ifndef EXECFS_FUZZ_H
#define EXECFS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

#define FUZZ_PLAN_LEN 4
#define FUZZ_PAGE_SEP "\n@@page@@\n"
#define FUZZ_MAX_PAGES 64
#define FUZZ_OUT_CAP (16u << 20)

#define FUZZ_MODE_FORMAT 0x03
#define FUZZ_MODE_RETRY 0x04
#define FUZZ_MODE_END_BODY 0x08

#define FUZZ_ASSERT(cond)                                                                \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, \
				#cond);                                                  \
			abort();                                                         \
		}                                                                        \
	} while (0)

struct fuzz_plan {
	unsigned char mode;
	unsigned char sizes[FUZZ_PLAN_LEN - 1];
	unsigned step;
};

/* One page of a streamed input. headers and body point into a private,
 * NUL-terminated copy (the engine's buffers are NUL-terminated too). */
struct fuzz_page {
	char *headers;
	char *body;
	size_t len;
};

static inline size_t fuzz_chunk_len(struct fuzz_plan *plan, size_t left)
{
	unsigned char b = plan->sizes[plan->step++ % (FUZZ_PLAN_LEN - 1)];
	size_t n;

	if (b == 0)
		n = left;
	else if (b < 64)
		n = b;
	else if (b < 128)
		n = (size_t)(b - 63) * 64;
	else
		n = (size_t)(b & 7) + 1;
	return n < left ? n : left;
}

/* A malloc'd, NUL-terminated copy of len bytes. */
static inline char *fuzz_copy(const void *data, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy)
		abort();
	memcpy(copy, data, len);
	copy[len] = '\0';
	return copy;
}

/* Splits data into pages; each is a fresh copy the caller frees with
 * fuzz_pages_free(). Returns the number of pages (at least one). */
static inline int fuzz_pages(const uint8_t *data, size_t size, int with_headers,
			     struct fuzz_page *pages)
{
	const size_t seplen = strlen(FUZZ_PAGE_SEP);
	int count = 0;

	for (;;) {
		const uint8_t *sep = memmem(data, size, FUZZ_PAGE_SEP, seplen);
		size_t len = sep ? (size_t)(sep - data) : size;
		char *copy = fuzz_copy(data, len);
		char *blank = with_headers ? memmem(copy, len, "\r\n\r\n", 4) : NULL;
		struct fuzz_page *page = &pages[count++];

		if (blank) {
			/* the engine keeps header lines with their CRLF */
			page->headers = fuzz_copy(copy, (size_t)(blank - copy) + 4);
			page->body = fuzz_copy(blank + 4, len - (size_t)(blank - copy) - 4);
			page->len = len - (size_t)(blank - copy) - 4;
			free(copy);
		} else {
			page->headers = fuzz_copy("", 0);
			page->body = copy;
			page->len = len;
		}
		if (!sep || count == FUZZ_MAX_PAGES)
			return count;
		size -= len + seplen;
		data = sep + seplen;
	}
}

static inline void fuzz_pages_free(struct fuzz_page *pages, int count)
{
	for (int i = 0; i < count; i++) {
		free(pages[i].headers);
		free(pages[i].body);
	}
}

/* What a decode gave: the file's bytes and the outcome. */
struct fuzz_decoded {
	struct buffer out;
	int rc;		/* 0, or the first failure's -errno */
	int pages;	/* pages ended */
};

static inline void fuzz_check_error(const struct api_error *err)
{
	FUZZ_ASSERT(err->err > 0);
	FUZZ_ASSERT(memchr(err->message, '\0', sizeof(err->message)) != NULL);
}

/* An error status the engine may get, and the call it answered. */
struct fuzz_error_reply {
	long status;
	enum api_call call;
};

/* The body of a small JSON reply: handed to parse() as a 200 under each of
 * the headers, then to error_parse() under each error status (with the
 * headers in turn). The driver of the targets for status and job replies;
 * the backend is set up once, from source. */
static inline void fuzz_small_replies(const char *source, const uint8_t *data, size_t size,
				      const char *const *headers, size_t n_headers,
				      const struct fuzz_error_reply *errors, size_t n_errors,
				      void (*parse)(const struct backend *,
						    const struct api_response *))
{
	static struct backend b;
	struct api_error err;
	char *body;

	if (!b.ops && backend_init(&b, source, &err))
		abort();
	body = fuzz_copy(data, size); /* the engine's bodies end with a NUL */
	for (size_t i = 0; i < n_headers; i++) {
		struct api_response resp = {200, headers[i], body, size};

		parse(&b, &resp);
	}
	for (size_t i = 0; i < n_errors; i++) {
		struct api_response resp = {errors[i].status, headers[i % n_headers], body, size};

		memset(&err, 0, sizeof(err));
		b.ops->error_parse(&b, errors[i].call, &resp, &err);
		fuzz_check_error(&err);
	}
	free(body);
}

/* A next-page link the way the engine treats it: checked for its origin. */
static inline void fuzz_check_link(const struct backend *b, const char *url)
{
	if (!url)
		return;
	FUZZ_ASSERT(url[0] != '\0');
	(void)backend_same_origin(b, url);
}

/* Runs a whole download: for every page, page_begin, then (at its first
 * body byte) page_headers and next_from_headers, page_data in chunks, and
 * page_end; the next page only when page_end names one; finish at the end.
 * The decoder is freed. */
static inline void fuzz_decode(const struct backend *b, struct result_decoder *d,
			       struct fuzz_plan *plan, struct fuzz_page *pages, int count,
			       struct fuzz_decoded *res)
{
	const struct result_decoder_ops *ops = d->ops;
	struct api_error err;
	char *ahead = NULL;	/* the page asked for ahead, from the headers */
	int i;

	buffer_init(&res->out, FUZZ_OUT_CAP);
	res->rc = 0;
	res->pages = 0;
	for (i = 0; i < count; i++) {
		struct fuzz_page *page = &pages[i];
		struct api_response head = {200, page->headers, "", 0};
		struct api_response end = {200, page->headers, NULL, 0};
		size_t page_start = res->out.len;
		int attempts = plan->mode & FUZZ_MODE_RETRY ? 2 : 1;
		char *next = NULL;

		for (int attempt = 1; attempt <= attempts; attempt++) {
			size_t off = 0;

			ops->page_begin(d);
			/* the engine writes a retried page over its first attempt */
			res->out.len = page_start;
			if (res->out.data)
				res->out.data[page_start] = '\0';
			while (off < page->len) {
				size_t n = fuzz_chunk_len(plan, page->len - off);

				if (off == 0) {
					memset(&err, 0, sizeof(err));
					if (ops->page_headers)
						res->rc = ops->page_headers(d, &head, &err);
					if (res->rc)
						goto failed;
					if (ops->next_from_headers && !ahead) {
						ahead = ops->next_from_headers(d, &head);
						fuzz_check_link(b, ahead);
					}
				}
				memset(&err, 0, sizeof(err));
				res->rc = ops->page_data(d, page->body + off, n, &res->out, &err);
				if (res->rc)
					goto failed;
				off += n;
				if (attempt < attempts)
					break; /* the connection broke here */
			}
		}
		if (plan->mode & FUZZ_MODE_END_BODY) {
			end.body = page->body;
			end.len = page->len;
		}
		memset(&err, 0, sizeof(err));
		res->rc = ops->page_end(d, &end, &res->out, &next, &err);
		if (res->rc) {
			FUZZ_ASSERT(!next);
			goto failed;
		}
		res->pages++;
		FUZZ_ASSERT(d->page == res->pages);
		fuzz_check_link(b, next);
		free(ahead);
		ahead = NULL;
		if (!next)
			break;
		free(next);
		if (i == count - 1) {
			res->rc = 1; /* cut short: no page to follow the link */
			goto out;
		}
	}
	memset(&err, 0, sizeof(err));
	res->rc = ops->finish(d, &res->out, &err);
	if (res->rc)
		goto failed;
	goto out;
failed:
	FUZZ_ASSERT(res->rc < 0);
	fuzz_check_error(&err);
out:
	free(ahead);
	ops->free(d);
}

/* fuzz_decode() with the plan, then again with every page whole and no
 * retry: how the bytes were split may change nothing. res is the first. */
static inline void fuzz_decode_twice(const struct backend *b, enum result_format format,
				     struct fuzz_plan *plan, struct fuzz_page *pages, int count,
				     struct fuzz_decoded *res)
{
	struct fuzz_plan whole = {.mode = plan->mode & (unsigned char)~FUZZ_MODE_RETRY};
	struct fuzz_decoded ref;
	struct result_decoder *d = b->ops->decoder_new(b, format);

	FUZZ_ASSERT(d != NULL);
	fuzz_decode(b, d, plan, pages, count, res);
	d = b->ops->decoder_new(b, format);
	FUZZ_ASSERT(d != NULL);
	fuzz_decode(b, d, &whole, pages, count, &ref);
	FUZZ_ASSERT(res->rc == ref.rc);
	FUZZ_ASSERT(res->pages == ref.pages);
	if (res->rc == 0) {
		FUZZ_ASSERT(res->out.len == ref.out.len);
		FUZZ_ASSERT(!res->out.len ||
			    memcmp(res->out.data, ref.out.data, res->out.len) == 0);
	}
	buffer_free(&ref.out);
}

/* Every line of an NDJSON text is one JSON value; returns the lines. */
static inline size_t fuzz_check_ndjson(const char *text, size_t len)
{
	size_t lines = 0;

	while (len) {
		const char *eol = memchr(text, '\n', len);
		struct jspan value;

		FUZZ_ASSERT(eol != NULL); /* every line ends */
		FUZZ_ASSERT(jscan_document(text, (size_t)(eol - text), &value) == 0);
		lines++;
		len -= (size_t)(eol - text) + 1;
		text = eol + 1;
	}
	return lines;
}

/* The number of elements of an array span (validated already). */
static inline size_t fuzz_count_elements(struct jspan array)
{
	struct jscan_iter it;
	struct jspan element;
	size_t n = 0;

	FUZZ_ASSERT(jscan_array_begin(array, &it) == 0);
	while (jscan_array_next(&it, &element) == 1)
		n++;
	return n;
}

#endif
