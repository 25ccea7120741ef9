/* redash.c - Redash-compatible APIs (Redash itself, Nansen's query API):
 * requests and replies, after Redash's own handlers (getredash/redash).
 *
 * An execution is a job, named by its job id. A result that came without a
 * job (the latest result of a query, or an execute answered from Redash's
 * cache) is named "result-<result id>": a result id always names a finished
 * result, so its state is known without asking.
 */
#include "backend.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RESULT_PREFIX "result-"
#define REDASH_NDJSON_CAP (256u << 20) /* at most RESULT_OUT_CAP of the engine */
#define MSG_LOGIN "Couldn't find resource. Please login and try again."
#define MSG_NO_RESULT "No cached result found"
#define MSG_CANCELLED "Query cancelled by user."

enum redash_job_status {
	JOB_PENDING = 1,
	JOB_STARTED = 2,
	JOB_SUCCESS = 3,
	JOB_FAILURE = 4,
	JOB_CANCELLED = 5,
};

static char *redash_auth_header(const char *key)
{
	size_t len = strlen(key) + 32;
	char *line = malloc(len);

	if (line)
		snprintf(line, len, "Authorization: Key %s", key);
	return line;
}

/* The result id in "result-<rid>", or NULL for a job id. */
static const char *result_id_of(const char *eid)
{
	size_t n = strlen(RESULT_PREFIX);

	if (strncmp(eid, RESULT_PREFIX, n) != 0 || eid[n] < '1' || eid[n] > '9' || strlen(eid + n) > 18)
		return NULL;
	for (const char *p = eid + n; *p; p++)
		if (*p < '0' || *p > '9')
			return NULL;
	return eid + n;
}

/* A result id as Redash makes them: 1 to 18 digits, no leading zero. */
static int digits_id(const char *id)
{
	size_t n = strspn(id, "0123456789");

	return n && n <= 18 && !id[n] && id[0] != '0';
}

/* "result-..." is a result id or nothing: never sent as a job id. */
static int redash_eid_valid(const char *eid)
{
	return strncmp(eid, RESULT_PREFIX, strlen(RESULT_PREFIX)) != 0 || result_id_of(eid) != NULL;
}

/* The message of {"message": "..."} or of {"job": {"error": "..."}}. */
static const char *error_message(const cJSON *doc)
{
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(doc, "message");
	const cJSON *job = cJSON_GetObjectItemCaseSensitive(doc, "job");

	if (cJSON_IsString(msg))
		return msg->valuestring;
	msg = cJSON_GetObjectItemCaseSensitive(job, "error");
	if (cJSON_IsString(msg) && msg->valuestring[0])
		return msg->valuestring;
	return NULL;
}

static void redash_error_parse(const struct backend *b, enum api_call call,
			       const struct api_response *resp, struct api_error *err)
{
	cJSON *doc = NULL;
	const char *msg;
	int errnum;

	(void)b;
	errnum = api_status_errno(resp->status);
	if (api_response_is_json(resp))
		doc = cJSON_ParseWithLength(resp->body, resp->len);
	msg = error_message(doc);
	if (resp->status == 404 && msg && strstr(msg, "Please login"))
		errnum = EACCES; /* Redash's answer to a missing or wrong key */
	else if (resp->status == 404 && msg && strstr(msg, MSG_NO_RESULT))
		errnum = ENODATA;
	else if (resp->status == 500 && call == CALL_STATUS)
		errnum = ENOENT; /* Redash's answer for a job it does not know, or no longer */
	if (msg)
		api_fail(err, errnum, resp->status, "%s", msg);
	else if (api_response_is_html(resp))
		api_fail(err, errnum, resp->status, "HTTP %ld with an HTML page where JSON was expected",
			 resp->status);
	else if (resp->len && !doc)
		api_fail(err, errnum, resp->status, "HTTP %ld with a non-JSON body", resp->status);
	else
		api_fail(err, errnum, resp->status, "HTTP %ld", resp->status);
	cJSON_Delete(doc);
}

/* ---- execute -------------------------------------------------------------- */

static int redash_execute_prepare(const struct backend *b, const char *qid, struct api_request *req)
{
	return api_request_make(req, "GET", api_url("%s/api/queries/%s", b->base_url, qid));
}

static int is_range_type(const char *type)
{
	return strcmp(type, "date-range") == 0 || strcmp(type, "datetime-range") == 0 ||
	       strcmp(type, "datetime-range-with-seconds") == 0;
}

/* A JSON number kept to its exact digits (ids beyond 2^53 stay whole). */
static cJSON *number_from_text(const char *text)
{
	const char *p = text;
	char *end;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return NULL;
	strtod(p, &end);
	if (end == p)
		return NULL;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end)
		return NULL;
	/* JSON's grammar is stricter than strtod's (no "inf", "0x1", "+1", ".5"),
	 * and than cJSON's ("01", "1." would go out as they are) */
	{
		struct jspan number;

		if ((*p != '-' && (*p < '0' || *p > '9')) ||
		    jscan_document(p, (size_t)(end - p), &number))
			return NULL;
	}
	{
		size_t len = (size_t)(end - p);
		char *digits = strndup(p, len);
		cJSON *raw;

		if (!digits)
			return NULL;
		while (len > 0 && (digits[len - 1] == ' ' || digits[len - 1] == '\t'))
			digits[--len] = '\0';
		raw = cJSON_CreateRaw(digits);
		free(digits);
		return raw;
	}
}

/* A scalar as the text Redash expects for text-like types. */
static cJSON *as_string(const cJSON *value)
{
	char *text;
	cJSON *out;

	if (cJSON_IsString(value))
		return cJSON_CreateString(value->valuestring);
	if (cJSON_IsNumber(value) || cJSON_IsBool(value)) {
		text = cJSON_PrintUnformatted(value);
		out = text ? cJSON_CreateString(text) : NULL;
		free(text);
		return out;
	}
	return NULL;
}

/* "a,b , c" -> ["a", "b", "c"] */
static cJSON *split_list(const char *text)
{
	cJSON *list = cJSON_CreateArray();
	const char *p = text;

	while (list && *p) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *s = p, *e = end;
		char *item;

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		item = strndup(s, (size_t)(e - s));
		if (!item || !cJSON_AddItemToArray(list, cJSON_CreateString(item))) {
			free(item);
			cJSON_Delete(list);
			return NULL;
		}
		free(item);
		p = comma ? comma + 1 : end;
	}
	return list;
}

/* "START..END" -> {"start": START, "end": END}; other text (a dynamic
 * range such as "d_last_7_days") is sent as it is. */
static cJSON *range_from_text(const char *text)
{
	const char *dots = strstr(text, "..");
	cJSON *range;
	char *start;

	if (!dots)
		return cJSON_CreateString(text);
	range = cJSON_CreateObject();
	start = strndup(text, (size_t)(dots - text));
	if (!range || !start || !cJSON_AddStringToObject(range, "start", start) ||
	    !cJSON_AddStringToObject(range, "end", dots + 2)) {
		free(start);
		cJSON_Delete(range);
		return NULL;
	}
	free(start);
	return range;
}

/* The value of one parameter, typed by its definition. NULL with a reason in
 * err when it does not fit. */
static cJSON *typed_value(const cJSON *def, const char *name, const cJSON *value, struct api_error *err)
{
	const cJSON *type_item = cJSON_GetObjectItemCaseSensitive(def, "type");
	const char *type = cJSON_IsString(type_item) ? type_item->valuestring : "text";
	const cJSON *multi = cJSON_GetObjectItemCaseSensitive(def, "multiValuesOptions");
	cJSON *out = NULL;

	if (strcmp(type, "number") == 0) {
		if (cJSON_IsNumber(value))
			out = cJSON_Duplicate(value, 1);
		else if (cJSON_IsString(value))
			out = number_from_text(value->valuestring);
		if (!out)
			api_fail(err, EINVAL, 0, "parameter %s: expected a number", name);
		return out;
	}
	if (is_range_type(type)) {
		if (cJSON_IsObject(value) && cJSON_GetObjectItemCaseSensitive(value, "start") &&
		    cJSON_GetObjectItemCaseSensitive(value, "end"))
			out = cJSON_Duplicate(value, 1);
		else if (cJSON_IsArray(value) && cJSON_GetArraySize(value) == 2 &&
			 (out = cJSON_CreateObject())) {
			cJSON_AddItemToObject(out, "start", as_string(cJSON_GetArrayItem(value, 0)));
			cJSON_AddItemToObject(out, "end", as_string(cJSON_GetArrayItem(value, 1)));
		} else if (cJSON_IsString(value))
			out = range_from_text(value->valuestring);
		if (!out)
			api_fail(err, EINVAL, 0, "parameter %s: expected a range: START..END or "
				 "{\"start\": ..., \"end\": ...}", name);
		return out;
	}
	if (cJSON_IsObject(multi)) {
		if (cJSON_IsArray(value)) {
			const cJSON *item;

			out = cJSON_CreateArray();
			cJSON_ArrayForEach(item, value) {
				cJSON *text = as_string(item);

				if (!text || !cJSON_AddItemToArray(out, text)) {
					cJSON_Delete(text);
					cJSON_Delete(out);
					out = NULL;
					break;
				}
			}
		} else if (cJSON_IsString(value)) {
			out = split_list(value->valuestring);
		} else if ((out = cJSON_CreateArray())) {
			cJSON_AddItemToArray(out, as_string(value));
		}
		if (!out)
			api_fail(err, EINVAL, 0, "parameter %s: expected a list: a,b,c or [\"a\", \"b\"]", name);
		return out;
	}
	/* text, enum, query, date, datetime-local, ...: a string */
	out = as_string(value);
	if (!out)
		api_fail(err, EINVAL, 0, "parameter %s: expected a single value", name);
	return out;
}

static const cJSON *find_definition(const cJSON *defs, const char *name)
{
	const cJSON *def;

	cJSON_ArrayForEach(def, defs) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(def, "name");

		if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
			return def;
	}
	return NULL;
}

/* Every defined parameter: the written value, typed, or the query's default. */
static int build_parameters(const cJSON *defs, const cJSON *params, cJSON *out, struct api_error *err)
{
	const cJSON *def, *given;

	cJSON_ArrayForEach(given, params) {
		if (!find_definition(defs, given->string))
			return api_fail(err, EINVAL, 0, "the query has no parameter named %s", given->string);
	}
	cJSON_ArrayForEach(def, defs) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(def, "name");
		const cJSON *value;
		cJSON *typed;

		if (!cJSON_IsString(name))
			continue;
		value = cJSON_GetObjectItemCaseSensitive(params, name->valuestring);
		if (value) {
			typed = typed_value(def, name->valuestring, value, err);
			if (!typed)
				return -err->err;
		} else {
			value = cJSON_GetObjectItemCaseSensitive(def, "value");
			if (!value || cJSON_IsNull(value))
				continue; /* no default: Redash names what is missing */
			typed = cJSON_Duplicate(value, 1);
		}
		if (!typed || !cJSON_AddItemToObject(out, name->valuestring, typed)) {
			cJSON_Delete(typed);
			return api_fail(err, ENOMEM, 0, "out of memory");
		}
	}
	return 0;
}

static int redash_execute_request(const struct backend *b, const char *qid, const cJSON *params,
				  const struct api_response *prepared, struct api_request *req,
				  struct api_error *err)
{
	cJSON *query = NULL, *body = NULL, *values = NULL;
	const cJSON *defs;
	int rc;

	if (prepared) {
		query = api_json_reply(prepared, err);
		if (!query)
			return -err->err;
	}
	defs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(query, "options"),
						 "parameters");
	body = cJSON_CreateObject();
	values = cJSON_AddObjectToObject(body, "parameters");
	if (!body || !values) {
		rc = api_fail(err, ENOMEM, 0, "out of memory");
		goto out;
	}
	rc = build_parameters(cJSON_IsArray(defs) ? defs : NULL, params, values, err);
	if (rc)
		goto out;
	if (!cJSON_AddNumberToObject(body, "max_age", 0)) { /* always a new run */
		rc = api_fail(err, ENOMEM, 0, "out of memory");
		goto out;
	}
	rc = api_request_make(req, "POST", api_url("%s/api/queries/%s/results", b->base_url, qid));
	if (!rc && !(req->body = cJSON_PrintUnformatted(body))) {
		api_request_free(req);
		rc = -ENOMEM;
	}
	if (rc) {
		api_fail(err, ENOMEM, 0, "out of memory");
		goto out;
	}
	req->starts_run = 1;
out:
	cJSON_Delete(query);
	cJSON_Delete(body);
	return rc;
}

/* A result id stands for a finished result: its execution. */
static int result_info(const char *rid, struct exec_info *info)
{
	char doc[128];

	snprintf(info->execution_id, sizeof(info->execution_id), RESULT_PREFIX "%s", rid);
	snprintf(info->result_id, sizeof(info->result_id), "%s", rid);
	info->state = EXEC_SUCCESS;
	/* no status document exists for a result; this says what is known */
	snprintf(doc, sizeof(doc), "{\"query_result_id\":%s}", rid);
	info->document = strdup(doc);
	return 0;
}

/* {"job": {...}}: the job's fields into info. */
static int job_info(const cJSON *job, const struct api_response *resp, struct exec_info *info,
		    struct api_error *err)
{
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(job, "status");
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(job, "error");
	const char *message = cJSON_IsString(error) && error->valuestring[0] ? error->valuestring : NULL;
	double code;

	if (cJSON_IsNumber(status))
		code = status->valuedouble;
	else if (cJSON_IsString(status))
		code = atof(status->valuestring);
	else
		return api_fail(err, EIO, resp->status, "job without a status");
	api_json_id(job, "id", info->execution_id, sizeof(info->execution_id));
	if (!api_json_id(job, "query_result_id", info->result_id, sizeof(info->result_id)))
		api_json_id(job, "result", info->result_id, sizeof(info->result_id));
	/* checked before the cast: a double out of int's range (1e10, "nan")
	 * has no int value, and the cast would be undefined */
	if (!(code >= JOB_PENDING && code <= JOB_CANCELLED) || code != (int)code)
		code = 0; /* 6, 7, 2.5, ...: not finished */
	switch ((int)code) {
	case JOB_PENDING: info->state = EXEC_PENDING; break;
	case JOB_STARTED: info->state = EXEC_RUNNING; break;
	case JOB_SUCCESS: info->state = EXEC_SUCCESS; break;
	case JOB_FAILURE:
		info->state = message && strcmp(message, MSG_CANCELLED) == 0 ? EXEC_CANCELLED : EXEC_FAILURE;
		break;
	case JOB_CANCELLED: info->state = EXEC_CANCELLED; break;
	default: info->state = EXEC_PENDING; break; /* 6, 7, ...: not finished */
	}
	if (info->state == EXEC_SUCCESS && !info->result_id[0])
		return api_fail(err, EIO, resp->status, "job succeeded without a query_result_id");
	if (info->result_id[0] && !digits_id(info->result_id))
		return api_fail(err, EIO, resp->status, "job names a result id that is not one: %.40s",
				info->result_id);
	if (message && (info->state == EXEC_FAILURE || info->state == EXEC_CANCELLED))
		info->error_message = strdup(message);
	return 0;
}

static int redash_execute_parse(const struct backend *b, const struct api_response *resp,
				struct exec_info *info, struct api_error *err)
{
	cJSON *doc = api_json_reply(resp, err);
	const cJSON *job, *result;
	char rid[72];
	int rc;

	(void)b;
	if (!doc)
		return -err->err;
	job = cJSON_GetObjectItemCaseSensitive(doc, "job");
	result = cJSON_GetObjectItemCaseSensitive(doc, "query_result");
	if (cJSON_IsObject(job)) {
		rc = job_info(job, resp, info, err);
		if (!rc && !info->execution_id[0])
			rc = api_fail(err, EIO, resp->status, "execute reply with a job without an id");
		if (!rc)
			info->document = cJSON_PrintUnformatted(doc);
	} else if (cJSON_IsObject(result) && api_json_id(result, "id", rid, sizeof(rid))) {
		rc = result_info(rid, info); /* answered from Redash's cache */
	} else {
		rc = api_fail(err, EIO, resp->status, "execute reply with neither a job nor a query_result");
	}
	cJSON_Delete(doc);
	return rc;
}

/* ---- status and cancel ------------------------------------------------------ */

static int redash_status_local(const struct backend *b, const char *eid, struct exec_info *info)
{
	const char *rid = result_id_of(eid);

	(void)b;
	if (!rid)
		return 0;
	result_info(rid, info);
	return 1;
}

static int redash_status_request(const struct backend *b, const char *eid, struct api_request *req)
{
	return api_request_make(req, "GET", api_url("%s/api/jobs/%s", b->base_url, eid));
}

static int redash_status_parse(const struct backend *b, const struct api_response *resp,
			       struct exec_info *info, struct api_error *err)
{
	cJSON *doc = api_json_reply(resp, err);
	const cJSON *job;
	int rc;

	(void)b;
	if (!doc)
		return -err->err;
	job = cJSON_GetObjectItemCaseSensitive(doc, "job");
	if (cJSON_IsObject(job))
		rc = job_info(job, resp, info, err);
	else
		rc = api_fail(err, EIO, resp->status, "status reply without a job");
	cJSON_Delete(doc);
	if (!rc)
		info->document = strndup(resp->body, resp->len);
	return rc;
}

static int redash_cancel_request(const struct backend *b, const char *eid, struct api_request *req)
{
	if (result_id_of(eid))
		return -EINVAL; /* a result has finished: there is no job to cancel */
	return api_request_make(req, "DELETE", api_url("%s/api/jobs/%s", b->base_url, eid));
}

static int redash_cancel_parse(const struct backend *b, const struct api_response *resp,
			       struct api_error *err)
{
	cJSON *doc;
	int ok;

	(void)b;
	/* 200 with `null` (or an object); HTML from a proxy is not a cancel */
	if (api_response_is_html(resp))
		return api_fail(err, EIO, resp->status, "expected JSON, got HTML (HTTP %ld)", resp->status);
	doc = cJSON_ParseWithLength(resp->body, resp->len);
	ok = cJSON_IsNull(doc) || cJSON_IsObject(doc);
	cJSON_Delete(doc);
	return ok ? 0 : api_fail(err, EIO, resp->status, "malformed JSON in the cancel reply");
}

/* ---- latest and results --------------------------------------------------- */

static int redash_latest_request(const struct backend *b, const char *qid, struct api_request *req)
{
	return api_request_make(req, "GET", api_url("%s/api/queries/%s", b->base_url, qid));
}

static int redash_latest_parse(const struct backend *b, const struct api_response *resp,
			       struct exec_info *info, struct api_error *err)
{
	cJSON *doc = api_json_reply(resp, err);
	const cJSON *latest;
	char rid[72];
	int rc;

	(void)b;
	if (!doc)
		return -err->err;
	latest = cJSON_GetObjectItemCaseSensitive(doc, "latest_query_data_id");
	if (api_json_id(doc, "latest_query_data_id", rid, sizeof(rid)))
		rc = result_info(rid, info);
	else if (!latest || cJSON_IsNull(latest))
		rc = api_fail(err, ENODATA, resp->status, MSG_NO_RESULT " for this query.");
	else
		rc = api_fail(err, EIO, resp->status, "latest_query_data_id is not a result id");
	if (!rc)
		api_json_id(doc, "id", info->query_id, sizeof(info->query_id));
	cJSON_Delete(doc);
	return rc;
}

/* By result id: a job's result from /api/query_results/<rid>; a query's
 * latest from /api/queries/<qid>/results/<rid>, the per-query route that a
 * query's own API key may read too, pinned to the id that was checked so a
 * newer result arriving meanwhile cannot mix in. */
static int redash_result_request(const struct backend *b, const struct exec_info *info,
				 enum result_format format, struct api_request *req)
{
	const char *rid = result_id_of(info->execution_id);
	const char *ext = format == FORMAT_CSV ? "csv" : "json"; /* NDJSON is made from JSON */

	if (rid && info->query_id[0])
		return api_request_make(req, "GET", api_url("%s/api/queries/%s/results/%s.%s", b->base_url,
							     info->query_id, rid, ext));
	if (!rid)
		rid = info->result_id;
	if (!rid[0])
		return -EIO;
	return api_request_make(req, "GET", api_url("%s/api/query_results/%s.%s", b->base_url, rid, ext));
}

/* A result is one document, passed through as it streams: checked only for
 * what shows a wrong body (HTML from a proxy, a JSON document cut short).
 * NDJSON is made from the JSON document, held whole (capped), at its end. */
struct redash_decoder {
	struct result_decoder base;
	enum result_format format;
	int json;	/* the body is JSON (results.json, results.ndjson) */
	int seen;	/* a non-blank byte came */
	char first, last; /* first and last non-blank bytes */
	char last_byte;
	struct buffer doc; /* NDJSON: the document */
	struct jstream check; /* JSON: the syntax of what came so far */
};

static void redash_page_begin(struct result_decoder *d)
{
	struct redash_decoder *rd = (struct redash_decoder *)d;

	rd->seen = 0;
	rd->first = rd->last = rd->last_byte = 0;
	jstream_init(&rd->check);
	buffer_reset(&rd->doc);
}

static int redash_page_headers(struct result_decoder *d, const struct api_response *resp,
			       struct api_error *err)
{
	struct redash_decoder *rd = (struct redash_decoder *)d;
	char type[128];
	const char *want = rd->json ? "JSON" : "CSV";

	if (api_response_is_html(resp))
		return api_fail(err, EIO, resp->status, "an HTML page where the %s result was expected", want);
	if (rd->json && api_response_header(resp, "Content-Type", type, sizeof(type)) &&
	    !api_response_is_json(resp))
		return api_fail(err, EIO, resp->status, "a %s body where the JSON result was expected", type);
	return 0;
}

static int redash_page_data(struct result_decoder *d, const char *data, size_t len,
			    struct buffer *out, struct api_error *err)
{
	struct redash_decoder *rd = (struct redash_decoder *)d;

	for (size_t i = 0; i < len; i++) {
		char c = data[i];

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (!rd->seen) {
			rd->seen = 1;
			rd->first = c;
			if (rd->json && c != '{')
				return api_fail(err, EIO, 0, "the result is not JSON (%s)",
						c == '<' ? "an HTML page" : "unexpected bytes");
		}
		break;
	}
	if (len)
		rd->last_byte = data[len - 1];
	/* streamed to disk as it comes: a syntax error must fail the download
	 * before the end, or a reader would take a broken file for the result */
	if (rd->json && jstream_feed(&rd->check, data, len))
		return api_fail(err, EIO, 0, "malformed JSON in the result");
	for (size_t i = len; i > 0; i--) {
		char c = data[i - 1];

		if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
			rd->last = c;
			break;
		}
	}
	if (rd->format == FORMAT_NDJSON) {
		if (buffer_append(&rd->doc, data, len))
			return api_fail(err, EIO, 0, "a JSON result passed %u MB, too big to split into rows",
					REDASH_NDJSON_CAP >> 20);
		return 0;
	}
	if (buffer_append(out, data, len))
		return api_fail(err, ENOMEM, 0, "out of memory");
	return 0;
}

static int redash_page_end(struct result_decoder *d, const struct api_response *resp,
			   struct buffer *out, char **next_url, struct api_error *err)
{
	struct redash_decoder *rd = (struct redash_decoder *)d;

	(void)out;
	*next_url = NULL; /* Redash does not page */
	if (api_response_is_html(resp))
		return api_fail(err, EIO, resp->status, "an HTML page where the %s result was expected",
				rd->json ? "JSON" : "CSV");
	if (rd->json && (!rd->seen || rd->last != '}' || jstream_end(&rd->check)))
		return api_fail(err, EIO, resp->status, "the JSON result is empty, cut short or malformed");
	if (rd->format == FORMAT_CSV && !rd->seen)
		return api_fail(err, EIO, resp->status, "the CSV result has no header row");
	if (rd->format == FORMAT_CSV && rd->last_byte != '\n')
		return api_fail(err, EIO, resp->status, "the CSV result does not end with a line break: cut short");
	d->page++;
	return 0;
}

static int redash_finish(struct result_decoder *d, struct buffer *out, struct api_error *err)
{
	struct redash_decoder *rd = (struct redash_decoder *)d;
	struct jspan doc, result, data, rows;
	int rc;

	if (rd->format != FORMAT_NDJSON)
		return 0;
	if (jscan_document(rd->doc.data, rd->doc.len, &doc) ||
	    jscan_find(doc, "query_result", &result) != 1 || jscan_find(result, "data", &data) != 1 ||
	    jscan_find(data, "rows", &rows) != 1)
		return api_fail(err, EIO, 0, "the JSON result holds no query_result.data.rows");
	rc = result_rows_ndjson(rows, out);
	if (rc)
		return api_fail(err, rc == -ENOMEM ? ENOMEM : EIO, 0, "cannot split the result into rows");
	return 0;
}

static void redash_decoder_free(struct result_decoder *d)
{
	struct redash_decoder *rd = (struct redash_decoder *)d;

	buffer_free(&rd->doc);
	free(rd);
}

static const struct result_decoder_ops redash_decoder_ops = {
	.page_begin = redash_page_begin,
	.page_headers = redash_page_headers,
	.page_data = redash_page_data,
	.page_end = redash_page_end,
	.finish = redash_finish,
	.free = redash_decoder_free,
};

static struct result_decoder *redash_decoder_new(const struct backend *b, enum result_format format)
{
	struct redash_decoder *rd = calloc(1, sizeof(*rd));

	(void)b;
	if (!rd)
		return NULL;
	rd->base.ops = &redash_decoder_ops;
	rd->base.expect_rows = -1;
	rd->format = format;
	rd->json = format != FORMAT_CSV;
	buffer_init(&rd->doc, REDASH_NDJSON_CAP);
	return &rd->base;
}

const struct backend_ops redash_backend_ops = {
	.eid_valid = redash_eid_valid,
	.name = "redash",
	.key_env = "REDASH_API_KEY",
	.default_url = NULL, /* Redash is self-hosted: redash:URL */
	.default_path = NULL,
	.auth_header = redash_auth_header,
	.execute_prepare = redash_execute_prepare,
	.execute_request = redash_execute_request,
	.execute_parse = redash_execute_parse,
	.status_local = redash_status_local,
	.status_request = redash_status_request,
	.status_parse = redash_status_parse,
	.cancel_request = redash_cancel_request,
	.cancel_parse = redash_cancel_parse,
	.latest_request = redash_latest_request,
	.latest_parse = redash_latest_parse,
	.result_request = redash_result_request,
	.decoder_new = redash_decoder_new,
	.error_parse = redash_error_parse,
};
