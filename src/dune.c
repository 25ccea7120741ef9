/* dune.c - the Dune API v1 (its OpenAPI spec, duneanalytics/dune-docs), requests and replies. */
#include "backend.h"
#include "jscan.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Rows a page asks for; the server may send fewer and says where to go on. */
#define DUNE_PAGE_ROWS 32000
/* One JSON page is held whole while it is merged; no page may pass this. */
#define DUNE_JSON_PAGE_CAP (256u << 20) /* at most RESULT_OUT_CAP of the engine */

static char *dune_auth_header(const char *key)
{
	size_t len = strlen(key) + 32;
	char *line = malloc(len);

	if (line)
		snprintf(line, len, "X-Dune-API-Key: %s", key);
	return line;
}

/* The API's message from {"error": "..."}, or a short summary of the body. */
static void dune_error_parse(const struct backend *b, enum api_call call,
			     const struct api_response *resp, struct api_error *err)
{
	cJSON *doc = NULL;
	const cJSON *msg;
	int errnum;

	(void)b;
	(void)call;
	errnum = api_status_errno(resp->status);
	if (api_response_is_json(resp))
		doc = cJSON_ParseWithLength(resp->body, resp->len);
	msg = cJSON_GetObjectItemCaseSensitive(doc, "error");
	if (cJSON_IsString(msg) && resp->status == 404 &&
	    strstr(msg->valuestring, "No execution found"))
		api_fail(err, ENODATA, resp->status, "%s", msg->valuestring); /* never run */
	else if (cJSON_IsString(msg))
		api_fail(err, errnum, resp->status, "%s", msg->valuestring);
	else if (cJSON_IsObject(msg) && cJSON_IsString(cJSON_GetObjectItem(msg, "message")))
		api_fail(err, errnum, resp->status, "%s", cJSON_GetObjectItem(msg, "message")->valuestring);
	else if (!api_response_is_json(resp) && resp->len)
		api_fail(err, errnum, resp->status, "HTTP %ld with a non-JSON body", resp->status);
	else
		api_fail(err, errnum, resp->status, "HTTP %ld", resp->status);
	cJSON_Delete(doc);
}

static int dune_execute_request(const struct backend *b, const char *qid, const cJSON *params,
				const struct api_response *prepared, struct api_request *req,
				struct api_error *err)
{
	cJSON *body = cJSON_CreateObject();
	int rc;

	(void)prepared;
	if (!body)
		return api_fail(err, ENOMEM, 0, "out of memory");
	if (params && !cJSON_AddItemToObject(body, "query_parameters", cJSON_Duplicate(params, 1)))
		goto nomem;
	if (b->performance[0] && !cJSON_AddStringToObject(body, "performance", b->performance))
		goto nomem;
	rc = api_request_make(req, "POST", api_url("%s/query/%s/execute", b->base_url, qid));
	if (rc)
		goto nomem;
	req->starts_run = 1;
	req->body = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);
	if (!req->body) {
		api_request_free(req);
		return api_fail(err, ENOMEM, 0, "out of memory");
	}
	return 0;
nomem:
	cJSON_Delete(body);
	return api_fail(err, ENOMEM, 0, "out of memory");
}

static int dune_execute_parse(const struct backend *b, const struct api_response *resp,
			      struct exec_info *info, struct api_error *err)
{
	cJSON *doc = api_json_reply(resp, err);

	(void)b;
	if (!doc)
		return -err->err;
	if (!api_json_id(doc, "execution_id", info->execution_id, sizeof(info->execution_id))) {
		cJSON_Delete(doc);
		return api_fail(err, EIO, resp->status, "execute reply without an execution_id");
	}
	info->state = EXEC_PENDING;
	cJSON_Delete(doc);
	return 0;
}

static int dune_status_request(const struct backend *b, const char *eid, struct api_request *req)
{
	return api_request_make(req, "GET", api_url("%s/execution/%s/status", b->base_url, eid));
}

/* EXEC_UNKNOWN for a state this code does not know. */
static enum exec_state dune_state(const char *name)
{
	static const struct {
		const char *name;
		enum exec_state state;
	} states[] = {
		{"QUERY_STATE_PENDING", EXEC_PENDING},
		{"QUERY_STATE_EXECUTING", EXEC_RUNNING},
		{"QUERY_STATE_COMPLETED", EXEC_SUCCESS},
		{"QUERY_STATE_COMPLETED_PARTIAL", EXEC_PARTIAL},
		{"QUERY_STATE_FAILED", EXEC_FAILURE},
		{"QUERY_STATE_CANCELLED", EXEC_CANCELLED},
		{"QUERY_STATE_CANCELED", EXEC_CANCELLED},
		{"QUERY_STATE_EXPIRED", EXEC_EXPIRED},
	};

	for (size_t i = 0; name && i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(name, states[i].name) == 0)
			return states[i].state;
	return EXEC_UNKNOWN;
}

/* RFC 3339 UTC with 0 to 9 fractional digits; 0 when it does not parse. */
static time_t parse_time(const cJSON *item)
{
	struct tm tm;
	const char *rest;

	if (!cJSON_IsString(item))
		return 0;
	memset(&tm, 0, sizeof(tm));
	rest = strptime(item->valuestring, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return 0;
	return timegm(&tm);
}

/* Status fields, shared by the status reply and result pages. */
static int dune_fill_info(const cJSON *doc, const struct api_response *resp, struct exec_info *info,
			  struct api_error *err)
{
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(doc, "state");
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(doc, "error");

	if (!cJSON_IsString(state))
		return api_fail(err, EIO, resp->status, "status reply without a state");
	info->state = dune_state(state->valuestring);
	api_json_id(doc, "execution_id", info->execution_id, sizeof(info->execution_id));
	api_json_id(doc, "query_id", info->query_id, sizeof(info->query_id));
	info->ended_at = parse_time(cJSON_GetObjectItemCaseSensitive(doc, "execution_ended_at"));
	if (cJSON_IsObject(error) && cJSON_IsString(cJSON_GetObjectItem(error, "message")))
		info->error_message = strdup(cJSON_GetObjectItem(error, "message")->valuestring);
	else if (cJSON_IsString(error))
		info->error_message = strdup(error->valuestring);
	if (info->state == EXEC_UNKNOWN) {
		/* a state this code does not know: not final, asked again. Unless
		 * the API says the run has ended: then no poll would ever end the
		 * wait, so it is a broken reply (EIO for readers after a few), but
		 * not a final state (a later reply may name a known one) */
		info->state = EXEC_PENDING;
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "is_execution_finished")))
			return api_fail(err, EIO, resp->status,
					"the run has ended, in state %.100s, which execfs does not know",
					state->valuestring);
	}
	return 0;
}

/* A reply that tells of one execution (status, latest) into info. */
static int dune_read_info(const struct api_response *resp, struct exec_info *info,
			  struct api_error *err)
{
	cJSON *doc = api_json_reply(resp, err);
	int rc;

	if (!doc)
		return -err->err;
	rc = dune_fill_info(doc, resp, info, err);
	cJSON_Delete(doc);
	return rc;
}

static int dune_status_parse(const struct backend *b, const struct api_response *resp,
			     struct exec_info *info, struct api_error *err)
{
	int rc = dune_read_info(resp, info, err);

	(void)b;
	if (rc)
		return rc;
	info->document = strndup(resp->body, resp->len);
	return 0;
}

static int dune_cancel_request(const struct backend *b, const char *eid, struct api_request *req)
{
	return api_request_make(req, "POST", api_url("%s/execution/%s/cancel", b->base_url, eid));
}

static int dune_cancel_parse(const struct backend *b, const struct api_response *resp,
			     struct api_error *err)
{
	cJSON *doc = api_json_reply(resp, err);
	int ok;

	(void)b;
	if (!doc)
		return -err->err;
	ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "success"));
	cJSON_Delete(doc);
	if (!ok)
		return api_fail(err, EIO, resp->status, "cancel was not accepted");
	return 0;
}

static int dune_latest_request(const struct backend *b, const char *qid, struct api_request *req)
{
	return api_request_make(req, "GET", api_url("%s/query/%s/results?limit=1&allow_partial_results=true",
						   b->base_url, qid));
}

static int dune_latest_parse(const struct backend *b, const struct api_response *resp,
			     struct exec_info *info, struct api_error *err)
{
	int rc = dune_read_info(resp, info, err);

	(void)b;
	if (rc)
		return rc;
	if (!info->execution_id[0])
		return api_fail(err, EIO, resp->status, "latest result without an execution_id");
	if (info->state != EXEC_SUCCESS && info->state != EXEC_PARTIAL)
		return api_fail(err, ENODATA, resp->status, "the latest execution is %s",
				exec_state_word(info->state));
	return 0;
}

static int dune_result_request(const struct backend *b, const struct exec_info *info,
			       enum result_format format, struct api_request *req)
{
	return api_request_make(req, "GET",
			    api_url("%s/execution/%s/results%s?limit=%d&allow_partial_results=true",
				       b->base_url, info->execution_id,
				       format == FORMAT_CSV ? "/csv" : "", DUNE_PAGE_ROWS));
}

/* api_json_count of a JSON span. */
static long long span_count(struct jspan span)
{
	cJSON *n = cJSON_ParseWithLength(span.start, span.len);
	long long v = api_json_count(n);

	cJSON_Delete(n);
	return v;
}

/* The offset= of a URL's query, -1 when absent. */
static long long url_offset(const char *url)
{
	const char *q = strchr(url, '?');

	while (q) {
		q++;
		if (strncmp(q, "offset=", 7) == 0 && q[7] >= '0' && q[7] <= '9')
			return strtoll(q + 7, NULL, 10);
		q = strchr(q, '&');
	}
	return -1;
}

/* result_metadata.total_row_count of a completed run's status (not of a
 * partial one: a truncated result may count more than it holds). */
static long long dune_expected_rows(const char *document)
{
	cJSON *doc = cJSON_Parse(document);
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(doc, "state");
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "result_metadata");
	long long v = -1;

	if (cJSON_IsString(state) && strcmp(state->valuestring, "QUERY_STATE_COMPLETED") == 0)
		v = api_json_count(cJSON_GetObjectItemCaseSensitive(meta, "total_row_count"));
	cJSON_Delete(doc);
	return v;
}

/* CSV: pages are joined as they stream; every page after the first starts
 * with the header row again, which is dropped. */
struct csv_decoder {
	struct result_decoder base;
	int in_header;	/* still skipping this page's header row */
	int in_quotes;
	size_t page_bytes;	/* body bytes of this page so far */
	char last;		/* the last of them */
	int body_quotes;	/* inside a quoted field, after the header */
	long long rows;		/* data records of the pages ended so far */
	long long page_rows;	/* records of this page after its header */
};

static void csv_page_begin(struct result_decoder *d)
{
	struct csv_decoder *csv = (struct csv_decoder *)d;

	csv->in_header = d->page > 0;
	csv->in_quotes = 0;
	csv->page_bytes = 0;
	csv->last = 0;
	csv->body_quotes = 0;
	csv->page_rows = 0;
}

/* Counts the records (line breaks outside quotes) in data. */
static void csv_count(struct csv_decoder *csv, const char *p, const char *end)
{
	while (p < end) {
		const char *nl, *q;

		if (csv->body_quotes) {
			q = memchr(p, '"', (size_t)(end - p));
			if (!q)
				return;
			csv->body_quotes = 0;
			p = q + 1;
			continue;
		}
		nl = memchr(p, '\n', (size_t)(end - p));
		q = memchr(p, '"', (size_t)((nl ? nl : end) - p));
		if (q) {
			csv->body_quotes = 1;
			p = q + 1;
			continue;
		}
		if (!nl)
			return;
		csv->page_rows++;
		p = nl + 1;
	}
}

static int csv_page_headers(struct result_decoder *d, const struct api_response *resp,
			    struct api_error *err)
{
	if (api_response_is_html(resp))
		return api_fail(err, EIO, resp->status, "an HTML page where CSV page %d was expected",
				d->page + 1);
	return 0;
}

static int csv_page_data(struct result_decoder *d, const char *data, size_t len,
			 struct buffer *out, struct api_error *err)
{
	struct csv_decoder *csv = (struct csv_decoder *)d;
	size_t i = 0;

	if (len) {
		csv->page_bytes += len;
		csv->last = data[len - 1];
	}
	while (csv->in_header && i < len) {
		char c = data[i++];

		if (c == '"')
			csv->in_quotes = !csv->in_quotes;
		else if (c == '\n' && !csv->in_quotes)
			csv->in_header = 0;
	}
	if (i < len)
		csv_count(csv, data + i, data + len);
	if (i < len && buffer_append(out, data + i, len - i))
		return api_fail(err, ENOMEM, 0, "out of memory");
	return 0;
}

/* A next page's URL as linked, keeping allow_partial_results: page 1 asked
 * for it, and were a link to drop it, page 2 of a COMPLETED_PARTIAL result
 * would be refused (the API serves those only when asked). */
static char *next_url_of(const char *link)
{
	size_t len = strlen(link) + sizeof("&allow_partial_results=true");
	char *url;

	if (strstr(link, "allow_partial_results=") || strchr(link, '#'))
		return strdup(link);
	url = malloc(len);
	if (url)
		snprintf(url, len, "%s%callow_partial_results=true", link, strchr(link, '?') ? '&' : '?');
	return url;
}

static int next_link(const char *value, char **next_url, struct api_error *err)
{
	*next_url = NULL;
	if (!value || !*value)
		return 0;
	*next_url = next_url_of(value);
	return *next_url ? 0 : api_fail(err, ENOMEM, 0, "out of memory");
}

static char *csv_next_from_headers(struct result_decoder *d, const struct api_response *resp)
{
	char link[2048];

	(void)d;
	if (!api_response_header(resp, "x-dune-next-uri", link, sizeof(link)) || !link[0])
		return NULL;
	return next_url_of(link);
}

static int csv_page_end(struct result_decoder *d, const struct api_response *resp,
			struct buffer *out, char **next_url, struct api_error *err)
{
	char link[2048], offset[32];
	struct csv_decoder *csv = (struct csv_decoder *)d;
	long long said;

	(void)out;
	/* Every page holds the header row and ends with a line break: a page
	 * without them was cut short where the transport could not tell. */
	if (d->page > 0 && csv->in_header)
		return api_fail(err, EIO, resp->status, "CSV page %d has no complete header row", d->page + 1);
	if (csv->page_bytes && csv->last != '\n')
		return api_fail(err, EIO, resp->status, "CSV page %d does not end with a line break",
				d->page + 1);
	/* the rows counted must agree with where the next page starts and,
	 * at the end, with the status's total: else rows were lost */
	csv->rows += csv->page_rows - (d->page == 0 && csv->page_rows > 0); /* page 1's header */
	if (!api_response_header(resp, "x-dune-next-uri", link, sizeof(link)))
		link[0] = '\0';
	if (link[0] && api_response_header(resp, "x-dune-next-offset", offset, sizeof(offset)) &&
	    strtoll(offset, NULL, 10) != csv->rows)
		return api_fail(err, EIO, resp->status, "CSV page %d ends at row %lld, the next is said to start at %s",
				d->page + 1, csv->rows, offset);
	if (link[0] && (said = url_offset(link)) >= 0 && said != csv->rows)
		return api_fail(err, EIO, resp->status, "CSV page %d ends at row %lld, its next page starts at %lld",
				d->page + 1, csv->rows, said);
	if (!link[0] && d->expect_rows >= 0 && csv->rows != d->expect_rows)
		return api_fail(err, EIO, resp->status, "the CSV result has %lld rows, its status says %lld",
				csv->rows, d->expect_rows);
	d->page++;
	return next_link(link, next_url, err);
}

static int csv_finish(struct result_decoder *d, struct buffer *out, struct api_error *err)
{
	(void)d;
	(void)out;
	(void)err;
	return 0;
}

static void plain_free(struct result_decoder *d)
{
	free(d);
}

static const struct result_decoder_ops csv_decoder_ops = {
	.page_begin = csv_page_begin,
	.page_headers = csv_page_headers,
	.next_from_headers = csv_next_from_headers,
	.page_data = csv_page_data,
	.page_end = csv_page_end,
	.finish = csv_finish,
	.free = plain_free,
};

/* JSON: each page is held whole, checked, and its rows copied byte for byte
 * into one document: the first page's fields, then "result": {"rows": [all
 * rows], "metadata": ...} with the counts of the whole result. NDJSON: the
 * same pages, each row on a line of its own. */
struct json_decoder {
	struct result_decoder base;
	struct buffer page;
	struct buffer metadata;	/* the first page's, rewritten for the whole */
	int any_rows;
	int ndjson;
	long long rows;		/* rows of the pages so far */
	long long total;	/* page 1's total_row_count, -1 unknown */
};

/* Checks a page's rows against what the pages say of themselves (lock-step
 * paging): its metadata's row_count, next_offset and the next link's offset
 * must agree with the rows counted, and at the end the total with page 1's
 * total_row_count. A page that lost rows, or a link that skips or loops,
 * would otherwise make a short or wrong file that looks complete. */
static int json_check_rows(struct json_decoder *json, int page, struct jspan doc, struct jspan result,
			   struct jspan rows, const char *next_url, const struct api_response *resp,
			   struct api_error *err)
{
	struct jscan_iter it;
	struct jspan row, span, state;
	long long count = 0, said;
	int rc;

	if (jscan_array_begin(rows, &it))
		return api_fail(err, EIO, resp->status, "result page %d holds no rows", page + 1);
	while ((rc = jscan_array_next(&it, &row)) == 1)
		count++;
	if (rc < 0)
		return api_fail(err, EIO, resp->status, "result page %d holds broken rows", page + 1);
	json->rows += count;
	if (jscan_find(result, "metadata", &span) == 1) {
		struct jspan metadata = span;

		/* a partial result (truncated by the API) may count more than it holds */
		if (page == 0 && jscan_find(metadata, "total_row_count", &span) == 1 &&
		    !(jscan_find(doc, "state", &state) == 1 &&
		      jscan_key_is(state, "QUERY_STATE_COMPLETED_PARTIAL")))
			json->total = span_count(span);
		if (jscan_find(metadata, "row_count", &span) == 1 && (said = span_count(span)) >= 0 &&
		    said != count)
			return api_fail(err, EIO, resp->status,
					"result page %d holds %lld rows, its metadata says %lld", page + 1,
					count, said);
	}
	if (jscan_find(doc, "next_offset", &span) == 1 && (said = span_count(span)) >= 0 &&
	    next_url && said != json->rows)
		return api_fail(err, EIO, resp->status,
				"result page %d ends at row %lld, its next_offset says %lld", page + 1,
				json->rows, said);
	if (next_url && (said = url_offset(next_url)) >= 0 && said != json->rows)
		return api_fail(err, EIO, resp->status,
				"result page %d ends at row %lld, its next page starts at %lld", page + 1,
				json->rows, said);
	if (json->total < 0)
		json->total = json->base.expect_rows;
	if (!next_url && json->total >= 0 && json->rows != json->total)
		return api_fail(err, EIO, resp->status,
				"the result has %lld rows, its metadata says %lld", json->rows, json->total);
	return 0;
}

static void json_page_begin(struct result_decoder *d)
{
	struct json_decoder *json = (struct json_decoder *)d;

	buffer_reset(&json->page);
}

static int json_page_data(struct result_decoder *d, const char *data, size_t len,
			  struct buffer *out, struct api_error *err)
{
	struct json_decoder *json = (struct json_decoder *)d;

	(void)out;
	if (buffer_append(&json->page, data, len))
		return api_fail(err, EIO, 0, "a JSON result page passed %u MB", DUNE_JSON_PAGE_CAP >> 20);
	return 0;
}

static int append_span(struct buffer *out, struct jspan span)
{
	return buffer_append(out, span.start, span.len);
}

/* metadata of the first page, with the page counts replaced by the totals. */
static int rewrite_metadata(struct json_decoder *json, struct jspan metadata)
{
	struct jscan_iter it;
	struct jspan key, value, total;
	int rc, first = 1;

	if (jscan_object_begin(metadata, &it))
		return -EINVAL;
	if (buffer_append_str(&json->metadata, "{"))
		return -ENOMEM;
	while ((rc = jscan_object_next(&it, &key, &value)) == 1) {
		if (jscan_key_is(key, "row_count") && jscan_find(metadata, "total_row_count", &total) == 1)
			value = total;
		else if (jscan_key_is(key, "result_set_bytes") &&
			 jscan_find(metadata, "total_result_set_bytes", &total) == 1)
			value = total;
		if ((!first && buffer_append_str(&json->metadata, ",")) ||
		    append_span(&json->metadata, key) || buffer_append_str(&json->metadata, ":") ||
		    append_span(&json->metadata, value))
			return -ENOMEM;
		first = 0;
	}
	if (rc < 0)
		return rc;
	return buffer_append_str(&json->metadata, "}") ? -ENOMEM : 0;
}

static int json_first_page(struct json_decoder *json, struct jspan doc, struct jspan metadata,
			   struct buffer *out)
{
	struct jscan_iter it;
	struct jspan key, value;
	int rc;

	if (buffer_append_str(out, "{"))
		return -ENOMEM;
	jscan_object_begin(doc, &it);
	while ((rc = jscan_object_next(&it, &key, &value)) == 1) {
		if (jscan_key_is(key, "result") || jscan_key_is(key, "next_offset") ||
		    jscan_key_is(key, "next_uri"))
			continue;
		if (append_span(out, key) || buffer_append_str(out, ":") || append_span(out, value) ||
		    buffer_append_str(out, ","))
			return -ENOMEM;
	}
	if (rc < 0)
		return rc;
	if (buffer_append_str(out, "\"result\":{\"rows\":["))
		return -ENOMEM;
	if (metadata.len)
		return rewrite_metadata(json, metadata);
	return 0;
}

static int json_page_end(struct result_decoder *d, const struct api_response *resp,
			 struct buffer *out, char **next_url, struct api_error *err)
{
	struct json_decoder *json = (struct json_decoder *)d;
	struct jspan doc, result, rows, inner, metadata = {NULL, 0}, next;
	cJSON *link;
	int rc;

	if (!json->page.len || jscan_document(json->page.data, json->page.len, &doc) ||
	    doc.start[0] != '{')
		return api_fail(err, EIO, resp->status, "malformed JSON in result page %d", d->page + 1);
	if (jscan_find(doc, "result", &result) != 1 || jscan_find(result, "rows", &rows) != 1 ||
	    jscan_array_inner(rows, &inner))
		return api_fail(err, EIO, resp->status, "result page %d holds no rows", d->page + 1);
	if (json->ndjson) {
		rc = result_rows_ndjson(rows, out);
		if (rc)
			return api_fail(err, rc == -ENOMEM ? ENOMEM : EIO, resp->status,
					"cannot split result page %d into rows", d->page + 1);
	} else if (d->page == 0) {
		if (jscan_find(result, "metadata", &metadata) != 1)
			metadata.len = 0;
		rc = json_first_page(json, doc, metadata, out);
		if (rc)
			return api_fail(err, rc == -ENOMEM ? ENOMEM : EIO, resp->status,
					"cannot merge result page 1");
	}
	if (inner.len && !json->ndjson) {
		if ((json->any_rows && buffer_append_str(out, ",")) || append_span(out, inner))
			return api_fail(err, ENOMEM, 0, "out of memory");
		json->any_rows = 1;
	}
	*next_url = NULL;
	if (jscan_find(doc, "next_uri", &next) == 1) {
		link = cJSON_ParseWithLength(next.start, next.len);
		if (cJSON_IsString(link))
			rc = next_link(link->valuestring, next_url, err);
		else
			rc = 0;
		cJSON_Delete(link);
		if (rc)
			return rc;
	}
	rc = json_check_rows(json, d->page, doc, result, rows, *next_url, resp, err);
	if (rc) {
		free(*next_url);
		*next_url = NULL;
		return rc;
	}
	d->page++;
	return 0;
}

static int json_finish(struct result_decoder *d, struct buffer *out, struct api_error *err)
{
	struct json_decoder *json = (struct json_decoder *)d;

	if (json->ndjson)
		return 0;
	if (buffer_append_str(out, "]") ||
	    (json->metadata.len && (buffer_append_str(out, ",\"metadata\":") ||
				    buffer_append(out, json->metadata.data, json->metadata.len))) ||
	    buffer_append_str(out, "}}"))
		return api_fail(err, ENOMEM, 0, "out of memory");
	return 0;
}

static void json_free(struct result_decoder *d)
{
	struct json_decoder *json = (struct json_decoder *)d;

	buffer_free(&json->page);
	buffer_free(&json->metadata);
	free(json);
}

static const struct result_decoder_ops json_decoder_ops = {
	.page_begin = json_page_begin,
	.page_data = json_page_data,
	.page_end = json_page_end,
	.finish = json_finish,
	.free = json_free,
};

static struct result_decoder *dune_decoder_new(const struct backend *b, enum result_format format)
{
	(void)b;
	if (format == FORMAT_CSV) {
		struct csv_decoder *csv = calloc(1, sizeof(*csv));

		if (!csv)
			return NULL;
		csv->base.ops = &csv_decoder_ops;
		csv->base.expect_rows = -1;
		return &csv->base;
	} else {
		struct json_decoder *json = calloc(1, sizeof(*json));

		if (!json)
			return NULL;
		json->base.ops = &json_decoder_ops;
		json->base.expect_rows = -1;
		json->ndjson = format == FORMAT_NDJSON;
		json->total = -1;
		buffer_init(&json->page, DUNE_JSON_PAGE_CAP);
		buffer_init(&json->metadata, 1u << 20);
		return &json->base;
	}
}

const struct backend_ops dune_backend_ops = {
	.name = "dune",
	.key_env = "DUNE_API_KEY",
	.default_url = "https://api.dune.com/api/v1",
	.default_path = "/api/v1",
	.auth_header = dune_auth_header,
	.execute_request = dune_execute_request,
	.execute_parse = dune_execute_parse,
	.status_request = dune_status_request,
	.status_parse = dune_status_parse,
	.cancel_request = dune_cancel_request,
	.cancel_parse = dune_cancel_parse,
	.latest_request = dune_latest_request,
	.latest_parse = dune_latest_parse,
	.result_request = dune_result_request,
	.decoder_new = dune_decoder_new,
	.expected_rows = dune_expected_rows,
	.error_parse = dune_error_parse,
};
