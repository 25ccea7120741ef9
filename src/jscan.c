/* jscan.c - a validating JSON skipper that reports spans. */
#include "jscan.h"

#include <errno.h>
#include <string.h>

#define JSCAN_MAX_DEPTH 256

/* Set when a scan fails only because the text ended (jscan_prefix). */
static _Thread_local int ran_out;

static const char *out_of_text(void)
{
	ran_out = 1;
	return NULL;
}

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static const char *skip_string(const char *p, const char *end)
{
	p++; /* the opening quote */
	while (p < end) {
		unsigned char c = (unsigned char)*p;

		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			if (++p >= end)
				return out_of_text();
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++) {
					if (p + i >= end)
						return out_of_text();
					if (!is_hex(p[i]))
						return NULL;
				}
				p += 4;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) { /* strchr finds the NUL */
				return NULL;
			}
		}
		p++;
	}
	return out_of_text();
}

static const char *skip_number(const char *p, const char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p >= end)
		return out_of_text();
	if (!is_digit(*p))
		return NULL;
	if (*p == '0')
		p++;
	else
		while (p < end && is_digit(*p))
			p++;
	if (p < end && *p == '.') {
		p++;
		if (p >= end)
			return out_of_text();
		if (!is_digit(*p))
			return NULL;
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end)
			return out_of_text();
		if (!is_digit(*p))
			return NULL;
		while (p < end && is_digit(*p))
			p++;
	}
	return p;
}

static const char *skip_literal(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(end - p) < n)
		return memcmp(p, word, (size_t)(end - p)) == 0 ? out_of_text() : NULL;
	if (memcmp(p, word, n) != 0)
		return NULL;
	return p + n;
}

static const char *skip_value(const char *p, const char *end, int depth);

static const char *skip_container(const char *p, const char *end, int depth)
{
	char close = *p == '{' ? '}' : ']';
	int is_object = *p == '{';
	int first = 1;

	if (depth > JSCAN_MAX_DEPTH)
		return NULL;
	p = skip_space(p + 1, end);
	if (p >= end)
		return out_of_text();
	if (*p == close)
		return p + 1;
	for (;;) {
		if (!first) {
			p = skip_space(p, end);
			if (p >= end)
				return out_of_text();
			if (*p == close)
				return p + 1;
			if (*p != ',')
				return NULL;
			p++;
		}
		first = 0;
		p = skip_space(p, end);
		if (is_object) {
			if (p >= end)
				return out_of_text();
			if (*p != '"')
				return NULL;
			p = skip_string(p, end);
			if (!p)
				return NULL;
			p = skip_space(p, end);
			if (p >= end)
				return out_of_text();
			if (*p != ':')
				return NULL;
			p++;
		}
		p = skip_value(p, end, depth + 1);
		if (!p)
			return NULL;
	}
}

/* Skips one value starting at p (whitespace first). NULL on a syntax error. */
static const char *skip_value(const char *p, const char *end, int depth)
{
	p = skip_space(p, end);
	if (p >= end)
		return out_of_text();
	switch (*p) {
	case '{':
	case '[':
		return skip_container(p, end, depth);
	case '"':
		return skip_string(p, end);
	case 't':
		return skip_literal(p, end, "true");
	case 'f':
		return skip_literal(p, end, "false");
	case 'n':
		return skip_literal(p, end, "null");
	default:
		return skip_number(p, end);
	}
}

int jscan_document(const char *text, size_t len, struct jspan *value)
{
	const char *end = text + len;
	const char *start = skip_space(text, end);
	const char *after = skip_value(start, end, 0);

	if (!after || skip_space(after, end) != end)
		return -EINVAL;
	value->start = start;
	value->len = (size_t)(after - start);
	return 0;
}

int jscan_prefix(const char *text, size_t len)
{
	ran_out = 0;
	return !skip_value(text, text + len, 0) && ran_out;
}

int jscan_object_begin(struct jspan object, struct jscan_iter *it)
{
	if (object.len < 2 || object.start[0] != '{')
		return -EINVAL;
	it->p = object.start + 1;
	it->end = object.start + object.len - 1; /* the closing brace */
	it->count = 0;
	return 0;
}

int jscan_object_next(struct jscan_iter *it, struct jspan *key, struct jspan *value)
{
	const char *p = skip_space(it->p, it->end);
	const char *after;

	if (p >= it->end)
		return 0;
	if (it->count > 0) {
		if (*p != ',')
			return -EINVAL;
		p = skip_space(p + 1, it->end);
	}
	if (p >= it->end || *p != '"')
		return -EINVAL;
	after = skip_string(p, it->end);
	if (!after)
		return -EINVAL;
	key->start = p;
	key->len = (size_t)(after - p);
	p = skip_space(after, it->end);
	if (p >= it->end || *p != ':')
		return -EINVAL;
	p = skip_space(p + 1, it->end);
	after = skip_value(p, it->end, 1);
	if (!after)
		return -EINVAL;
	value->start = p;
	value->len = (size_t)(after - p);
	it->p = after;
	it->count++;
	return 1;
}

int jscan_key_is(struct jspan key, const char *name)
{
	size_t n = strlen(name);

	return key.len == n + 2 && memcmp(key.start + 1, name, n) == 0;
}

int jscan_find(struct jspan object, const char *name, struct jspan *value)
{
	struct jscan_iter it;
	struct jspan key, v;
	int rc;

	if (jscan_object_begin(object, &it))
		return -EINVAL;
	while ((rc = jscan_object_next(&it, &key, &v)) == 1) {
		if (jscan_key_is(key, name)) {
			*value = v;
			return 1;
		}
	}
	return rc;
}

int jscan_array_inner(struct jspan array, struct jspan *inner)
{
	const char *p, *end;

	if (array.len < 2 || array.start[0] != '[')
		return -EINVAL;
	p = skip_space(array.start + 1, array.start + array.len - 1);
	end = array.start + array.len - 1;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		end--;
	inner->start = p;
	inner->len = (size_t)(end - p);
	return 0;
}

int jscan_array_begin(struct jspan array, struct jscan_iter *it)
{
	struct jspan inner;

	if (jscan_array_inner(array, &inner))
		return -EINVAL;
	it->p = inner.start;
	it->end = inner.start + inner.len;
	it->count = 0;
	return 0;
}

int jscan_array_next(struct jscan_iter *it, struct jspan *element)
{
	const char *p = skip_space(it->p, it->end);
	const char *after;

	if (p >= it->end)
		return 0;
	if (it->count > 0) {
		if (*p != ',')
			return -EINVAL;
		p = skip_space(p + 1, it->end);
	}
	after = p < it->end ? skip_value(p, it->end, 1) : NULL;
	if (!after)
		return -EINVAL;
	element->start = p;
	element->len = (size_t)(after - p);
	it->p = after;
	it->count++;
	return 1;
}

/* ---- the streaming checker ------------------------------------------------ */

enum {
	JS_VALUE,	/* a value must come (top level, after ':' or ',' in an array) */
	JS_VALUE_OR_END,	/* after '[' */
	JS_KEY,		/* after ',' in an object */
	JS_KEY_OR_END,	/* after '{' */
	JS_COLON,
	JS_AFTER,	/* after a value */
	JS_STRING,
	JS_ESCAPE,
	JS_HEX,
	JS_LITERAL,
	JS_MINUS, JS_ZERO, JS_INT, JS_DOT, JS_FRAC, JS_E, JS_ESIGN, JS_EXP,	/* a number */
	JS_DONE,
	JS_ERROR,
};

void jstream_init(struct jstream *s)
{
	memset(s, 0, sizeof(*s));
	s->state = JS_VALUE;
}

static int js_fail(struct jstream *s)
{
	s->state = JS_ERROR;
	return -EINVAL;
}

/* A value ended: what may follow depends on the container. */
static void js_value_done(struct jstream *s)
{
	s->state = s->depth ? JS_AFTER : JS_DONE;
}

static int js_number_ends(int state)
{
	return state == JS_ZERO || state == JS_INT || state == JS_FRAC || state == JS_EXP;
}

static int js_open(struct jstream *s, char c)
{
	if (s->depth >= JSCAN_MAX_DEPTH)
		return js_fail(s);
	s->stack[s->depth++] = (unsigned char)c;
	s->state = c == '{' ? JS_KEY_OR_END : JS_VALUE_OR_END;
	return 0;
}

static int js_close(struct jstream *s, char c)
{
	if (!s->depth || s->stack[s->depth - 1] != (c == '}' ? '{' : '['))
		return js_fail(s);
	s->depth--;
	js_value_done(s);
	return 0;
}

/* One byte where a value starts. */
static int js_value(struct jstream *s, char c)
{
	switch (c) {
	case '{':
	case '[':
		return js_open(s, c);
	case '"':
		s->state = JS_STRING;
		s->after_string = -1;	/* a value */
		return 0;
	case '-':
		s->state = JS_MINUS;
		return 0;
	case '0':
		s->state = JS_ZERO;
		return 0;
	case 't':
	case 'f':
	case 'n':
		s->literal = c == 't' ? "rue" : c == 'f' ? "alse" : "ull";
		s->left = (int)strlen(s->literal);
		s->state = JS_LITERAL;
		return 0;
	default:
		if (is_digit(c)) {
			s->state = JS_INT;
			return 0;
		}
		return js_fail(s);
	}
}

int jstream_feed(struct jstream *s, const char *p, size_t len)
{
	const char *end = p + len;

	while (p < end) {
		char c = *p;

		switch (s->state) {
		case JS_STRING: {
			/* the common case: run to the next quote, backslash or control */
			while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
				p++;
			if (p == end)
				return 0;
			c = *p++;
			if (c == '\\')
				s->state = JS_ESCAPE;
			else if (c == '"') {
				if (s->after_string == JS_COLON)
					s->state = JS_COLON;
				else
					js_value_done(s);
			} else
				return js_fail(s);
			continue;
		}
		case JS_ESCAPE:
			if (c == 'u') {
				s->state = JS_HEX;
				s->left = 4;
			} else if (c && strchr("\"\\/bfnrt", c)) {
				s->state = JS_STRING;
			} else {
				return js_fail(s);
			}
			p++;
			continue;
		case JS_HEX:
			if (!is_hex(c))
				return js_fail(s);
			if (--s->left == 0)
				s->state = JS_STRING;
			p++;
			continue;
		case JS_LITERAL:
			if (c != s->literal[0])
				return js_fail(s);
			s->literal++;
			if (--s->left == 0)
				js_value_done(s);
			p++;
			continue;
		case JS_MINUS:
			if (c == '0')
				s->state = JS_ZERO;
			else if (is_digit(c))
				s->state = JS_INT;
			else
				return js_fail(s);
			p++;
			continue;
		case JS_ZERO:
		case JS_INT:
		case JS_FRAC:
		case JS_EXP:
			if (is_digit(c) && s->state != JS_ZERO) {
				p++;
				continue;
			}
			if (c == '.' && (s->state == JS_ZERO || s->state == JS_INT)) {
				s->state = JS_DOT;
				p++;
				continue;
			}
			if ((c == 'e' || c == 'E') && s->state != JS_EXP) {
				s->state = JS_E;
				p++;
				continue;
			}
			js_value_done(s);	/* the number ended: c is what follows */
			continue;
		case JS_DOT:
			if (!is_digit(c))
				return js_fail(s);
			s->state = JS_FRAC;
			p++;
			continue;
		case JS_E:
			if (c == '+' || c == '-') {
				s->state = JS_ESIGN;
				p++;
				continue;
			}
			/* fall through */
		case JS_ESIGN:
			if (!is_digit(c))
				return js_fail(s);
			s->state = JS_EXP;
			p++;
			continue;
		case JS_ERROR:
			return -EINVAL;
		default:
			break;
		}
		p++;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		switch (s->state) {
		case JS_VALUE:
			if (js_value(s, c))
				return -EINVAL;
			break;
		case JS_VALUE_OR_END:
			if (c == ']' ? js_close(s, c) : js_value(s, c))
				return -EINVAL;
			break;
		case JS_KEY_OR_END:
		case JS_KEY:
			if (c == '}' && s->state == JS_KEY_OR_END) {
				if (js_close(s, c))
					return -EINVAL;
			} else if (c == '"') {
				s->state = JS_STRING;
				s->after_string = JS_COLON;
			} else {
				return js_fail(s);
			}
			break;
		case JS_COLON:
			if (c != ':')
				return js_fail(s);
			s->state = JS_VALUE;
			break;
		case JS_AFTER:
			if (c == ',')
				s->state = s->stack[s->depth - 1] == '{' ? JS_KEY : JS_VALUE;
			else if (c == '}' || c == ']') {
				if (js_close(s, c))
					return -EINVAL;
			} else
				return js_fail(s);
			break;
		default:	/* JS_DONE: only whitespace may follow */
			return js_fail(s);
		}
	}
	return 0;
}

int jstream_end(struct jstream *s)
{
	if (js_number_ends(s->state) && s->depth == 0)
		s->state = JS_DONE;
	return s->state == JS_DONE ? 0 : -EINVAL;
}
