/* params.c - parsing the input of `execute`. */
#include "params.h"
#include "jscan.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Whether text is UTF-8: no stray continuation byte, no overlong form, no
 * surrogate, nothing above U+10FFFF (RFC 3629). A JSON text is UTF-8. */
static int utf8_valid(const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len;

	while (p < end) {
		unsigned char c = *p++;
		size_t more;
		unsigned int cp, min;

		if (c < 0x80)
			continue;
		if (c >= 0xc2 && c <= 0xdf)
			more = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			more = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			more = 3, cp = c & 0x07, min = 0x10000;
		else
			return 0;
		if ((size_t)(end - p) < more)
			return 0;
		while (more--) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (*p++ & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
	}
	return 1;
}

static int fail(char *why, size_t whylen, const char *reason)
{
	snprintf(why, whylen, "%s", reason);
	return -EINVAL;
}

/* name=value lines; the value runs to the end of the line, as written. */
static int parse_lines(const char *p, const char *end, cJSON *params, char *why, size_t whylen)
{
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol ? eol : end;
		const char *eq, *name_end;
		char name[256], *value;

		while (p < line_end && is_space(*p))
			p++;
		if (line_end > p && line_end[-1] == '\r')
			line_end--;
		if (p < line_end) {
			eq = memchr(p, '=', (size_t)(line_end - p));
			if (!eq)
				return fail(why, whylen, "expected name=value lines or a JSON object");
			name_end = eq;
			while (name_end > p && is_space(name_end[-1]))
				name_end--;
			if (name_end == p)
				return fail(why, whylen, "a parameter line has an empty name");
			if ((size_t)(name_end - p) >= sizeof(name))
				return fail(why, whylen, "a parameter name is too long");
			memcpy(name, p, (size_t)(name_end - p));
			name[name_end - p] = '\0';
			if (cJSON_GetObjectItemCaseSensitive(params, name))
				return fail(why, whylen, "a parameter is given twice");
			value = strndup(eq + 1, (size_t)(line_end - eq - 1));
			if (!value || !cJSON_AddStringToObject(params, name, value)) {
				free(value);
				return fail(why, whylen, "out of memory");
			}
			free(value);
		}
		p = eol ? eol + 1 : end;
	}
	return 0;
}

/* A UTF-8 byte order mark, which editors on Windows put first in a file:
 * not part of the request (RFC 8259 §8.1 lets a parser ignore it). */
static const char *after_bom(const char *p, const char *end)
{
	return end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0 ? p + 3 : p;
}

int params_blank(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_space(data[i]))
			return 0;
	return 1;
}

int params_incomplete(const char *data, size_t len)
{
	const char *end = data + len, *p = after_bom(data, end);

	if (len > PARAMS_MAX_INPUT || memchr(data, '\0', len))
		return 0;
	while (p < end && is_space(*p))
		p++;
	return p < end && *p == '{' && jscan_prefix(p, (size_t)(end - p));
}

int params_piece(const char *data, size_t len)
{
	if (len == 0 || data[len - 1] != '\n')
		return 1;
	return len >= 512 && (len & (len - 1)) == 0;
}

int params_parse(const char *data, size_t len, cJSON **params, char *why, size_t whylen)
{
	const char *p = data, *end = data + len;
	cJSON *parsed;
	int rc;

	*params = NULL;
	if (len > PARAMS_MAX_INPUT)
		return fail(why, whylen, "the request is larger than 64 KiB");
	if (memchr(data, '\0', len))
		return fail(why, whylen, "the request holds a NUL byte");
	if (!utf8_valid((const unsigned char *)data, len))
		return fail(why, whylen, "the request is not valid UTF-8");
	p = after_bom(p, end);
	while (p < end && is_space(*p))
		p++;
	if (p == end)
		return 0;
	if (*p == '{' || *p == '[' || *p == '"') {
		struct jspan doc;

		/* jscan checks the whole text; cJSON alone would accept trailing junk */
		if (jscan_document(p, (size_t)(end - p), &doc))
			return fail(why, whylen, "the request is not valid JSON");
		parsed = cJSON_ParseWithLength(doc.start, doc.len);
		if (!parsed)
			return fail(why, whylen, "the request is not valid JSON");
		if (!cJSON_IsObject(parsed)) {
			cJSON_Delete(parsed);
			return fail(why, whylen, "the JSON request must be an object of parameters");
		}
		for (const cJSON *a = parsed->child; a; a = a->next)
			for (const cJSON *b = a->next; b; b = b->next)
				if (strcmp(a->string, b->string) == 0) {
					cJSON_Delete(parsed);
					return fail(why, whylen, "a parameter is given twice");
				}
		*params = parsed;
		return 0;
	}
	parsed = cJSON_CreateObject();
	if (!parsed)
		return fail(why, whylen, "out of memory");
	rc = parse_lines(p, end, parsed, why, whylen);
	if (rc) {
		cJSON_Delete(parsed);
		return rc;
	}
	*params = parsed;
	return 0;
}
