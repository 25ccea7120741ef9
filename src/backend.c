/* backend.c - what all backends share: states, errors, responses, SOURCE. */
#include "backend.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const state_words[] = {
	[EXEC_UNKNOWN] = "unknown",
	[EXEC_PENDING] = "pending",
	[EXEC_RUNNING] = "running",
	[EXEC_SUCCESS] = "success",
	[EXEC_PARTIAL] = "partial",
	[EXEC_FAILURE] = "failure",
	[EXEC_CANCELLED] = "cancelled",
	[EXEC_EXPIRED] = "expired",
};

const char *exec_state_word(enum exec_state state)
{
	if ((unsigned)state >= sizeof(state_words) / sizeof(state_words[0]))
		return "unknown";
	return state_words[state];
}

enum exec_state exec_state_from_word(const char *word)
{
	for (size_t i = 0; i < sizeof(state_words) / sizeof(state_words[0]); i++)
		if (word && strcmp(word, state_words[i]) == 0)
			return (enum exec_state)i;
	return EXEC_UNKNOWN;
}

int exec_state_is_terminal(enum exec_state state)
{
	return state >= EXEC_SUCCESS;
}

const char *result_format_ext(enum result_format format)
{
	return format == FORMAT_JSON ? "json" : format == FORMAT_NDJSON ? "ndjson" : "csv";
}

int result_rows_ndjson(struct jspan rows, struct buffer *out)
{
	struct jscan_iter it;
	struct jspan row;
	int rc;

	if (jscan_array_begin(rows, &it))
		return -EINVAL;
	while ((rc = jscan_array_next(&it, &row)) == 1) {
		size_t start = out->len;

		if (buffer_append(out, row.start, row.len) || buffer_append(out, "\n", 1))
			return -ENOMEM;
		/* A row sent over several lines (pretty-printed) still takes one:
		 * in a checked value, a line break can only be whitespace between
		 * tokens (strings hold no raw control characters). */
		for (size_t i = start; i < out->len - 1; i++)
			if (out->data[i] == '\n' || out->data[i] == '\r')
				out->data[i] = ' ';
	}
	return rc;
}

int api_fail(struct api_error *err, int errnum, long http_status, const char *fmt, ...)
{
	va_list ap;

	err->err = errnum;
	err->http_status = http_status;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -errnum;
}

int api_status_errno(long status)
{
	switch (status) {
	case 400: return EINVAL;
	case 401: return EACCES;
	case 402: return EDQUOT;
	case 403: return EACCES;
	case 404: return ENOENT;
	case 429: return EAGAIN;
	default: return EIO;
	}
}

void api_request_free(struct api_request *req)
{
	free(req->url);
	free(req->body);
	req->url = NULL;
	req->body = NULL;
}

char *api_url(const char *fmt, ...)
{
	va_list ap;
	char *url = NULL;

	va_start(ap, fmt);
	if (vasprintf(&url, fmt, ap) < 0)
		url = NULL;
	va_end(ap);
	return url;
}

int api_request_make(struct api_request *req, const char *method, char *url)
{
	req->method = method;
	req->url = url;
	req->body = NULL;
	req->starts_run = 0;
	return url ? 0 : -ENOMEM;
}

cJSON *api_json_reply(const struct api_response *resp, struct api_error *err)
{
	cJSON *doc;

	if (!api_response_is_json(resp)) {
		api_fail(err, EIO, resp->status, "expected JSON, got %s (HTTP %ld)",
			 api_response_is_html(resp) ? "HTML" : "something else", resp->status);
		return NULL;
	}
	doc = cJSON_ParseWithLength(resp->body, resp->len);
	if (!cJSON_IsObject(doc)) {
		cJSON_Delete(doc);
		api_fail(err, EIO, resp->status, "malformed JSON in the reply");
		return NULL;
	}
	return doc;
}

long long api_json_count(const cJSON *item)
{
	if (cJSON_IsNumber(item) && item->valuedouble >= 0 && item->valuedouble <= 9007199254740992.0 &&
	    item->valuedouble == (double)(long long)item->valuedouble)
		return (long long)item->valuedouble;
	return -1;
}

int api_json_id(const cJSON *doc, const char *name, char *out, size_t outlen)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, name);
	long long n;

	if (cJSON_IsString(item) && item->valuestring[0] && strlen(item->valuestring) < outlen) {
		strcpy(out, item->valuestring);
		return 1;
	}
	/* a number names an id only when it is whole, not 0 (nor -0) and
	 * exact in a double: 4242.4 or 2^60 + 1 would name another id */
	if ((n = api_json_count(item)) >= 1) {
		snprintf(out, outlen, "%lld", n);
		return 1;
	}
	return 0;
}

void exec_info_free(struct exec_info *info)
{
	free(info->error_message);
	free(info->document);
	info->error_message = NULL;
	info->document = NULL;
}

int api_response_header(const struct api_response *resp, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);
	const char *line = resp->headers;

	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t linelen = eol ? (size_t)(eol - line) : strlen(line);

		if (linelen > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
			const char *v = line + n + 1;
			const char *end = line + linelen;

			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
				end--;
			if (outlen) {
				size_t len = (size_t)(end - v) < outlen - 1 ? (size_t)(end - v) : outlen - 1;

				memcpy(out, v, len);
				out[len] = '\0';
			}
			return 1;
		}
		line = eol ? eol + 1 : NULL;
	}
	return 0;
}

int api_response_is_json(const struct api_response *resp)
{
	char type[128];

	if (api_response_header(resp, "Content-Type", type, sizeof(type)))
		return strncasecmp(type, "application/json", 16) == 0 || strstr(type, "+json") != NULL;
	for (size_t i = 0; i < resp->len; i++) {
		char c = resp->body[i];

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		return c == '{' || c == '[';
	}
	return 0;
}

int api_response_is_html(const struct api_response *resp)
{
	char type[128];

	if (api_response_header(resp, "Content-Type", type, sizeof(type)))
		return strncasecmp(type, "text/html", 9) == 0;
	for (size_t i = 0; i < resp->len; i++) {
		char c = resp->body[i];

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		return c == '<';
	}
	return 0;
}

static int origin_of(const char *url, char *out, size_t outlen)
{
	const char *host = strstr(url, "://");
	size_t len;

	if (!host || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
		return -EINVAL;
	host += 3;
	len = (size_t)(host - url) + strcspn(host, "/?#");
	if (len == (size_t)(host - url) || len >= outlen)
		return -EINVAL;
	memcpy(out, url, len);
	out[len] = '\0';
	return 0;
}

int backend_same_origin(const struct backend *b, const char *url)
{
	char origin[512];

	if (origin_of(url, origin, sizeof(origin)))
		return 0;
	return strcasecmp(origin, b->origin) == 0;
}

int backend_next_page_ok(const struct backend *b, const char *current, const char *next)
{
	char origin[512];
	size_t a, n;

	/* the origins compared as origins (the host's case is not the
	 * page's), then the paths byte for byte */
	if (!backend_same_origin(b, next) || origin_of(current, origin, sizeof(origin)))
		return 0;
	current += strlen(origin);
	if (origin_of(next, origin, sizeof(origin)))
		return 0;
	next += strlen(origin);
	a = strcspn(current, "?#");
	n = strcspn(next, "?#");
	return a == n && strncmp(current, next, a) == 0;
}

static const struct backend_ops *const all_backends[] = {
	&dune_backend_ops,
	&redash_backend_ops,
};

int backend_init(struct backend *b, const char *source, struct api_error *err)
{
	const char *colon = strchr(source, ':');
	size_t namelen = colon ? (size_t)(colon - source) : strlen(source);
	const char *url = colon ? colon + 1 : NULL;
	size_t len;

	memset(b, 0, sizeof(*b));
	for (size_t i = 0; i < sizeof(all_backends) / sizeof(all_backends[0]); i++)
		if (strlen(all_backends[i]->name) == namelen &&
		    strncmp(all_backends[i]->name, source, namelen) == 0)
			b->ops = all_backends[i];
	if (!b->ops)
		return api_fail(err, EINVAL, 0, "unknown SOURCE '%s': expected dune, dune:URL or redash:URL", source);
	if (!url) {
		url = b->ops->default_url;
		if (!url)
			return api_fail(err, EINVAL, 0, "SOURCE %s needs a URL (%s:URL)", b->ops->name, b->ops->name);
	}
	if (origin_of(url, b->origin, sizeof(b->origin)))
		return api_fail(err, EINVAL, 0, "SOURCE URL '%s' is not an http:// or https:// URL", url);
	len = strlen(url);
	while (len > 0 && url[len - 1] == '/')
		len--;
	if (len >= sizeof(b->base_url) - 16)
		return api_fail(err, EINVAL, 0, "SOURCE URL is too long");
	memcpy(b->base_url, url, len);
	b->base_url[len] = '\0';
	if (strcmp(b->base_url, b->origin) == 0 && b->ops->default_path)
		strcat(b->base_url, b->ops->default_path);
	return 0;
}
