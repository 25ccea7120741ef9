/* jscan.h - finds the spans of JSON values in a text without building a tree.
 *
 * Result pages are merged by copying the API's own bytes: a row the API sent
 * as 2985646787349243786078 stays exactly that, which a parse to double and a
 * print back would not keep. The scanner checks the syntax of everything it
 * skips, so a merged document is valid JSON whenever its pages were.
 */
#ifndef EXECFS_JSCAN_H
#define EXECFS_JSCAN_H

#include <stddef.h>

struct jspan {
	const char *start;
	size_t len;
};

/* Checks that text[0..len) is exactly one JSON value with optional
 * surrounding whitespace, and gives its span. Returns 0 or -EINVAL. */
int jscan_document(const char *text, size_t len, struct jspan *value);

/* Whether text[0..len) is the start of a JSON value cut short: a scan
 * meets the end of the text before any syntax error. */
int jscan_prefix(const char *text, size_t len);

struct jscan_iter {
	const char *p;
	const char *end;
	int count;
};

/* Starts iterating the members of an object span. Returns 0 or -EINVAL when
 * the span is not an object. */
int jscan_object_begin(struct jspan object, struct jscan_iter *it);

/* Gives the next member: key (with its quotes) and value. Returns 1 for a
 * member, 0 at the end, -EINVAL on a syntax error. */
int jscan_object_next(struct jscan_iter *it, struct jspan *key, struct jspan *value);

/* Whether a key span (with quotes) spells name, which holds no escapes. */
int jscan_key_is(struct jspan key, const char *name);

/* Finds member name of an object span. Returns 1 found, 0 absent, -EINVAL. */
int jscan_find(struct jspan object, const char *name, struct jspan *value);

/* The contents between the brackets of an array span, whitespace trimmed
 * (len 0 for an empty array). Returns 0 or -EINVAL if not an array. */
int jscan_array_inner(struct jspan array, struct jspan *inner);

/* Starts iterating the elements of an array span. Returns 0 or -EINVAL
 * when the span is not an array. */
int jscan_array_begin(struct jspan array, struct jscan_iter *it);

/* Gives the next element. Returns 1 for an element, 0 at the end, -EINVAL
 * on a syntax error. */
int jscan_array_next(struct jscan_iter *it, struct jspan *element);

/* A checker for a JSON text that comes in pieces (a result streamed to disk
 * without being held): jstream_feed each piece as it arrives, then
 * jstream_end. Same grammar and depth limit as jscan_document. */
struct jstream {
	int state;
	int after_string;	/* the state after the string under way */
	int left;		/* hex digits of \u, letters of a literal */
	const char *literal;
	int depth;
	unsigned char stack[256];	/* '{' or '[' per open container */
};

void jstream_init(struct jstream *s);

/* Returns 0, or -EINVAL at the first syntax error (and after it). */
int jstream_feed(struct jstream *s, const char *p, size_t len);

/* Returns 0 when the pieces fed make exactly one JSON value, else -EINVAL. */
int jstream_end(struct jstream *s);

#endif
