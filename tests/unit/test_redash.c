/* test_redash.c - the Redash backend, driven from strings. */
#include "test.h"
#include "backend.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>

#define JSON_HEADERS "Content-Type: application/json\r\n"

static struct api_response response(long status, const char *headers, const char *body)
{
	struct api_response r = {status, headers, body, strlen(body)};

	return r;
}

static struct backend redash(void)
{
	struct backend b;
	struct api_error err;

	backend_init(&b, "redash:http://127.0.0.1:5000", &err);
	return b;
}

static void test_source(void)
{
	struct backend b;
	struct api_error err;
	char *auth;

	CHECK(backend_init(&b, "redash:https://query.nansen.ai", &err) == 0);
	CHECK_STR(b.base_url, "https://query.nansen.ai");
	CHECK(backend_init(&b, "redash:https://redash.example.com/acme/", &err) == 0);
	CHECK_STR(b.base_url, "https://redash.example.com/acme"); /* multi-org prefix kept */
	CHECK(backend_init(&b, "redash", &err) == -EINVAL); /* self-hosted: needs a URL */
	CHECK(strstr(err.message, "redash:URL") != NULL);
	auth = b.ops->auth_header("k123");
	CHECK_STR(auth, "Authorization: Key k123");
	free(auth);
	CHECK_STR(b.ops->key_env, "REDASH_API_KEY");
}

/* The body execute_request makes for `written` against definitions `defs`. */
static char *execute_body(const char *defs, const char *written, int expect_rc, struct api_error *err)
{
	struct backend b = redash();
	struct api_request req = {0};
	char query[4096];
	struct api_response prepared;
	cJSON *params = written ? cJSON_Parse(written) : NULL;
	char *body = NULL;
	int rc;

	snprintf(query, sizeof(query), "{\"id\":7,\"options\":{\"parameters\":%s},\"latest_query_data_id\":null}",
		 defs);
	prepared = response(200, JSON_HEADERS, query);
	rc = b.ops->execute_request(&b, "7", params, &prepared, &req, err);
	CHECK(rc == expect_rc);
	if (rc == 0) {
		CHECK_STR(req.method, "POST");
		CHECK_STR(req.url, "http://127.0.0.1:5000/api/queries/7/results");
		CHECK(req.starts_run);
		body = req.body;
		req.body = NULL;
		api_request_free(&req);
	}
	cJSON_Delete(params);
	return body;
}

static void test_execute_parameters(void)
{
	struct api_error err;
	const char *defs =
		"[{\"name\":\"days\",\"type\":\"number\",\"value\":7},"
		"{\"name\":\"chain\",\"type\":\"text\",\"value\":\"ethereum\"},"
		"{\"name\":\"day\",\"type\":\"date\",\"value\":\"2024-01-01\"},"
		"{\"name\":\"span\",\"type\":\"date-range\",\"value\":{\"start\":\"2024-01-01\",\"end\":\"2024-01-31\"}},"
		"{\"name\":\"kind\",\"type\":\"enum\",\"enumOptions\":\"a\\nb\",\"value\":\"a\"},"
		"{\"name\":\"tags\",\"type\":\"enum\",\"enumOptions\":\"x\\ny\\nz\",\"value\":[\"x\"],"
		"\"multiValuesOptions\":{\"prefix\":\"\",\"suffix\":\"\",\"separator\":\",\"}}]";
	char *body;

	/* nothing written: every default, and max_age 0 */
	body = execute_body(defs, NULL, 0, &err);
	CHECK_STR(body, "{\"parameters\":{\"days\":7,\"chain\":\"ethereum\",\"day\":\"2024-01-01\","
			"\"span\":{\"start\":\"2024-01-01\",\"end\":\"2024-01-31\"},\"kind\":\"a\","
			"\"tags\":[\"x\"]},\"max_age\":0}");
	free(body);

	/* name=value strings typed by the definitions */
	body = execute_body(defs, "{\"days\":\"30\",\"span\":\"2020-01-01..2020-12-31\",\"tags\":\"y, z\","
				  "\"chain\":5}", 0, &err);
	CHECK_STR(body, "{\"parameters\":{\"days\":30,\"chain\":\"5\",\"day\":\"2024-01-01\","
			"\"span\":{\"start\":\"2020-01-01\",\"end\":\"2020-12-31\"},\"kind\":\"a\","
			"\"tags\":[\"y\",\"z\"]},\"max_age\":0}");
	free(body);

	/* numbers written as text keep their digits; ranges as objects or pairs */
	body = execute_body(defs, "{\"days\":\"123456789012345678901\",\"span\":[\"2021-01-01\",\"2021-02-01\"],"
				  "\"tags\":[\"z\"]}", 0, &err);
	CHECK(body && strstr(body, "\"days\":123456789012345678901,") != NULL);
	CHECK(body && strstr(body, "\"span\":{\"start\":\"2021-01-01\",\"end\":\"2021-02-01\"}") != NULL);
	CHECK(body && strstr(body, "\"tags\":[\"z\"]") != NULL);
	free(body);

	/* a dynamic range is sent as written */
	body = execute_body(defs, "{\"span\":\"d_last_7_days\"}", 0, &err);
	CHECK(body && strstr(body, "\"span\":\"d_last_7_days\"") != NULL);
	free(body);

	/* refused before anything is sent */
	CHECK(execute_body(defs, "{\"days\":\"seven\"}", -EINVAL, &err) == NULL);
	CHECK(strstr(err.message, "days") && strstr(err.message, "number"));
	CHECK(execute_body(defs, "{\"days\":\"0x10\"}", -EINVAL, &err) == NULL);
	/* what cJSON takes but JSON does not: would make the body invalid JSON */
	CHECK(execute_body(defs, "{\"days\":\"01\"}", -EINVAL, &err) == NULL);
	CHECK(execute_body(defs, "{\"days\":\"1.\"}", -EINVAL, &err) == NULL);
	CHECK(execute_body(defs, "{\"days\":\"-01\"}", -EINVAL, &err) == NULL);
	body = execute_body(defs, "{\"days\":\" -0.5e+3 \"}", 0, &err);
	CHECK(body && strstr(body, "\"days\":-0.5e+3,") != NULL);
	free(body);
	CHECK(execute_body(defs, "{\"day\":{\"a\":1}}", -EINVAL, &err) == NULL);
	CHECK(execute_body(defs, "{\"dayz\":\"1\"}", -EINVAL, &err) == NULL);
	CHECK(strstr(err.message, "no parameter named dayz") != NULL);
	CHECK(execute_body("[]", "{\"days\":\"1\"}", -EINVAL, &err) == NULL);

	/* no default: left out, for Redash to name as missing */
	body = execute_body("[{\"name\":\"n\",\"type\":\"number\",\"value\":null}]", NULL, 0, &err);
	CHECK_STR(body, "{\"parameters\":{},\"max_age\":0}");
	free(body);
}

static void test_execute_replies(void)
{
	struct backend b = redash();
	struct exec_info info = {0};
	struct api_error err;
	struct api_response r;

	r = response(200, JSON_HEADERS, "{\"job\":{\"id\":\"6f1c2e4a-9b7d-4c3e-8a2f-1d5e7b9c0a12\","
					 "\"updated_at\":0,\"status\":1,\"error\":\"\",\"result\":null,"
					 "\"query_result_id\":null}}");
	CHECK(b.ops->execute_parse(&b, &r, &info, &err) == 0);
	CHECK_STR(info.execution_id, "6f1c2e4a-9b7d-4c3e-8a2f-1d5e7b9c0a12");
	CHECK(info.state == EXEC_PENDING);
	exec_info_free(&info);

	memset(&info, 0, sizeof(info));
	r = response(200, JSON_HEADERS, "{\"query_result\":{\"id\":4242,\"data\":{\"columns\":[],\"rows\":[]}}}");
	CHECK(b.ops->execute_parse(&b, &r, &info, &err) == 0);
	CHECK_STR(info.execution_id, "result-4242");
	CHECK_STR(info.result_id, "4242");
	CHECK(info.state == EXEC_SUCCESS);
	exec_info_free(&info);

	memset(&info, 0, sizeof(info));
	r = response(200, "Content-Type: text/html\r\n", "<html>login</html>");
	CHECK(b.ops->execute_parse(&b, &r, &info, &err) == -EIO);
	CHECK(strstr(err.message, "HTML") != NULL);
	r = response(200, JSON_HEADERS, "{\"something\":1}");
	CHECK(b.ops->execute_parse(&b, &r, &info, &err) == -EIO);
}

static enum exec_state job_state(const char *job, const char **message, char *rid)
{
	struct backend b = redash();
	struct exec_info info = {0};
	struct api_error err;
	char body[512];
	struct api_response r;
	static char saved[256];
	enum exec_state state;

	snprintf(body, sizeof(body), "{\"job\":%s}", job);
	r = response(200, JSON_HEADERS, body);
	if (b.ops->status_parse(&b, &r, &info, &err) != 0) {
		exec_info_free(&info);
		return (enum exec_state)-1;
	}
	state = info.state;
	snprintf(saved, sizeof(saved), "%s", info.error_message ? info.error_message : "");
	if (message)
		*message = saved;
	if (rid)
		strcpy(rid, info.result_id);
	CHECK(info.document && strcmp(info.document, body) == 0);
	exec_info_free(&info);
	return state;
}

static void test_status(void)
{
	struct backend b = redash();
	struct api_request req;
	struct exec_info info = {0};
	const char *msg;
	char rid[72];

	CHECK(b.ops->status_request(&b, "abc-1", &req) == 0);
	CHECK_STR(req.url, "http://127.0.0.1:5000/api/jobs/abc-1");
	api_request_free(&req);

	CHECK(job_state("{\"id\":\"j\",\"status\":1,\"updated_at\":0}", NULL, NULL) == EXEC_PENDING);
	CHECK(job_state("{\"id\":\"j\",\"status\":2,\"updated_at\":\"2024-01-02T03:04:05\"}", NULL, NULL) ==
	      EXEC_RUNNING);
	CHECK(job_state("{\"id\":\"j\",\"status\":3,\"query_result_id\":77,\"result\":77}", NULL, rid) ==
	      EXEC_SUCCESS);
	CHECK_STR(rid, "77");
	/* older servers: no `result` key */
	CHECK(job_state("{\"id\":\"j\",\"status\":3,\"query_result_id\":78}", NULL, rid) == EXEC_SUCCESS);
	CHECK_STR(rid, "78");
	CHECK(job_state("{\"id\":\"j\",\"status\":3,\"result\":79}", NULL, rid) == EXEC_SUCCESS);
	CHECK_STR(rid, "79");
	CHECK(job_state("{\"id\":\"j\",\"status\":3,\"query_result_id\":null}", NULL, NULL) ==
	      (enum exec_state)-1);
	CHECK(job_state("{\"id\":\"j\",\"status\":4,\"error\":\"relation x does not exist\"}", &msg, NULL) ==
	      EXEC_FAILURE);
	CHECK_STR(msg, "relation x does not exist");
	CHECK(job_state("{\"id\":\"j\",\"status\":4,\"error\":\"\"}", &msg, NULL) == EXEC_FAILURE);
	CHECK(job_state("{\"id\":\"j\",\"status\":4,\"error\":\"Query cancelled by user.\"}", NULL, NULL) ==
	      EXEC_CANCELLED);
	CHECK(job_state("{\"id\":\"j\",\"status\":5}", NULL, NULL) == EXEC_CANCELLED);
	CHECK(job_state("{\"id\":\"j\",\"status\":7}", NULL, NULL) == EXEC_PENDING); /* not terminal */
	CHECK(job_state("{\"id\":\"j\",\"status\":99}", NULL, NULL) == EXEC_PENDING);
	/* no int holds these: not finished, and no undefined cast (found by fuzz_redash_job) */
	CHECK(job_state("{\"id\":\"j\",\"status\":1e10}", NULL, NULL) == EXEC_PENDING);
	CHECK(job_state("{\"id\":\"j\",\"status\":-1e300}", NULL, NULL) == EXEC_PENDING);
	CHECK(job_state("{\"id\":\"j\",\"status\":\"nan\"}", NULL, NULL) == EXEC_PENDING);
	CHECK(job_state("{\"id\":\"j\",\"status\":\"1e999\"}", NULL, NULL) == EXEC_PENDING);
	CHECK(job_state("{\"id\":\"j\",\"status\":3.5,\"query_result_id\":1}", NULL, NULL) ==
	      EXEC_PENDING);
	CHECK(job_state("{\"id\":\"j\"}", NULL, NULL) == (enum exec_state)-1);

	/* a result id needs no request */
	CHECK(b.ops->status_local(&b, "result-4242", &info) == 1);
	CHECK(info.state == EXEC_SUCCESS);
	CHECK_STR(info.result_id, "4242");
	exec_info_free(&info);
	CHECK(b.ops->status_local(&b, "6f1c2e4a-9b7d", &info) == 0);
	CHECK(b.ops->status_local(&b, "result-", &info) == 0);
	CHECK(b.ops->status_local(&b, "result-12a", &info) == 0);

	CHECK(b.ops->cancel_request(&b, "abc-1", &req) == 0);
	CHECK_STR(req.method, "DELETE");
	CHECK_STR(req.url, "http://127.0.0.1:5000/api/jobs/abc-1");
	api_request_free(&req);
	CHECK(b.ops->cancel_request(&b, "result-1", &req) == -EINVAL);
}

static void test_latest_and_results(void)
{
	struct backend b = redash();
	struct api_request req;
	struct exec_info info = {0};
	struct api_error err;
	struct api_response r;

	CHECK(b.ops->latest_request(&b, "12", &req) == 0);
	CHECK_STR(req.url, "http://127.0.0.1:5000/api/queries/12");
	api_request_free(&req);
	r = response(200, JSON_HEADERS, "{\"id\":12,\"latest_query_data_id\":555,\"options\":{}}");
	CHECK(b.ops->latest_parse(&b, &r, &info, &err) == 0);
	CHECK_STR(info.execution_id, "result-555");
	CHECK_STR(info.query_id, "12");
	CHECK(info.state == EXEC_SUCCESS);
	CHECK(b.ops->result_request(&b, &info, FORMAT_CSV, &req) == 0);
	CHECK_STR(req.url, "http://127.0.0.1:5000/api/queries/12/results/555.csv");
	api_request_free(&req);
	exec_info_free(&info);
	memset(&info, 0, sizeof(info));
	r = response(200, JSON_HEADERS, "{\"id\":12,\"latest_query_data_id\":null}");
	CHECK(b.ops->latest_parse(&b, &r, &info, &err) == -ENODATA);

	/* a job's result by its result id */
	memset(&info, 0, sizeof(info));
	strcpy(info.execution_id, "6f1c");
	strcpy(info.query_id, "12");
	strcpy(info.result_id, "77");
	CHECK(b.ops->result_request(&b, &info, FORMAT_JSON, &req) == 0);
	CHECK_STR(req.url, "http://127.0.0.1:5000/api/query_results/77.json");
	api_request_free(&req);
	CHECK(b.ops->result_request(&b, &info, FORMAT_NDJSON, &req) == 0); /* made from the JSON */
	CHECK_STR(req.url, "http://127.0.0.1:5000/api/query_results/77.json");
	api_request_free(&req);
	info.result_id[0] = '\0';
	CHECK(b.ops->result_request(&b, &info, FORMAT_JSON, &req) == -EIO);
}

static void test_errors(void)
{
	static const struct {
		long status;
		enum api_call call;
		const char *headers, *body;
		int err;
		const char *message;
	} cases[] = {
		{404, CALL_LATEST, JSON_HEADERS, "{\"message\":\"Couldn't find resource. Please login and try again.\"}",
		 EACCES, "Couldn't find resource. Please login and try again."},
		{404, CALL_RESULT, JSON_HEADERS, "{\"message\":\"No cached result found for this query.\"}",
		 ENODATA, "No cached result found for this query."},
		{404, CALL_LATEST, JSON_HEADERS, "{\"message\":\"Query not found\"}", ENOENT, "Query not found"},
		{400, CALL_EXECUTE, JSON_HEADERS,
		 "{\"message\":\"The following parameter values are incompatible with their definitions: days\"}",
		 EINVAL, "The following parameter values are incompatible with their definitions: days"},
		{400, CALL_EXECUTE, JSON_HEADERS, "{\"job\":{\"status\":4,\"error\":\"Missing parameter value for: days\"}}",
		 EINVAL, "Missing parameter value for: days"},
		{403, CALL_EXECUTE, JSON_HEADERS, "{\"message\":\"forbidden\"}", EACCES, "forbidden"},
		{500, CALL_STATUS, JSON_HEADERS, "{\"message\":\"Internal Server Error\"}", ENOENT,
		 "Internal Server Error"},
		{500, CALL_RESULT, JSON_HEADERS, "{\"message\":\"Internal Server Error\"}", EIO, "Internal Server Error"},
		{429, CALL_STATUS, "Content-Type: text/plain\r\n", "slow down", EAGAIN, "HTTP 429 with a non-JSON body"},
		{502, CALL_LATEST, "Content-Type: text/html\r\n", "<html>bad gateway</html>", EIO,
		 "HTTP 502 with an HTML page where JSON was expected"},
	};
	struct backend b = redash();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_response r = response(cases[i].status, cases[i].headers, cases[i].body);
		struct api_error err = {0};

		b.ops->error_parse(&b, cases[i].call, &r, &err);
		CHECK(err.err == cases[i].err);
		CHECK_STR(err.message, cases[i].message);
	}
}

/* Passes a body through the decoder; returns its rc. */
static int decode(enum result_format format, const char *headers, const char *body, size_t chunk,
		  struct buffer *out, struct api_error *err)
{
	struct backend b = redash();
	struct result_decoder *d = b.ops->decoder_new(&b, format);
	struct api_response head = response(200, headers, "");
	struct api_response resp = response(200, headers, body);
	size_t len = strlen(body);
	char *next = (char *)"x";
	int rc;

	d->ops->page_begin(d);
	rc = d->ops->page_headers(d, &head, err);
	for (size_t off = 0; !rc && off < len; off += chunk)
		rc = d->ops->page_data(d, body + off, len - off < chunk ? len - off : chunk, out, err);
	if (!rc)
		rc = d->ops->page_end(d, &resp, out, &next, err);
	if (!rc) {
		CHECK(next == NULL);
		rc = d->ops->finish(d, out, err);
	}
	d->ops->free(d);
	return rc;
}

static void test_decoder(void)
{
	const char *csv = "n,note\r\n1,\"a, b\"\r\n2,\r\n";
	const char *json = "{\"query_result\":{\"id\":1,\"data\":{\"columns\":[],\"rows\":[{\"n\":1}]}}}";
	struct buffer out;
	struct api_error err;

	for (size_t chunk = 1; chunk <= 64; chunk *= 4) {
		buffer_init(&out, 1 << 20);
		CHECK(decode(FORMAT_CSV, "Content-Type: text/csv; charset=UTF-8\r\n", csv, chunk, &out, &err) == 0);
		CHECK(out.len == strlen(csv) && memcmp(out.data, csv, out.len) == 0);
		buffer_free(&out);
		buffer_init(&out, 1 << 20);
		CHECK(decode(FORMAT_JSON, JSON_HEADERS, json, chunk, &out, &err) == 0);
		CHECK(out.len == strlen(json) && memcmp(out.data, json, out.len) == 0);
		buffer_free(&out);
	}
	/* NDJSON: the document's rows, a line each */
	for (size_t chunk = 1; chunk <= 64; chunk *= 4) {
		const char *two = "{\"query_result\":{\"data\":{\"rows\":[{\"n\": 1}, {\"n\":99999999999999999999}]}}}";

		buffer_init(&out, 1 << 20);
		CHECK(decode(FORMAT_NDJSON, JSON_HEADERS, two, chunk, &out, &err) == 0);
		CHECK(out.len == strlen("{\"n\": 1}\n{\"n\":99999999999999999999}\n") &&
		      memcmp(out.data, "{\"n\": 1}\n{\"n\":99999999999999999999}\n", out.len) == 0);
		buffer_free(&out);
	}
	/* a pretty-printed document: still a row a line (found by fuzz_redash_result) */
	for (size_t chunk = 1; chunk <= 64; chunk *= 4) {
		const char *pretty = "{\n \"query_result\": {\"data\": {\"rows\": [\n  {\n   \"n\": 1,\r\n"
				     "   \"s\": \"a\\nb\"\n  },\n  [1,\n2]\n ]}}\n}\n";
		const char *want = "{    \"n\": 1,     \"s\": \"a\\nb\"   }\n[1, 2]\n";

		buffer_init(&out, 1 << 20);
		CHECK(decode(FORMAT_NDJSON, JSON_HEADERS, pretty, chunk, &out, &err) == 0);
		CHECK_STR(out.data, want);
		buffer_free(&out);
	}
	buffer_init(&out, 1 << 20);
	CHECK(decode(FORMAT_NDJSON, JSON_HEADERS, "{\"query_result\":{\"id\":1}}", 4, &out, &err) == -EIO);
	CHECK(out.len == 0);
	buffer_free(&out);
	buffer_init(&out, 1 << 20);
	CHECK(decode(FORMAT_CSV, "Content-Type: text/html\r\n", "<html></html>", 4, &out, &err) == -EIO);
	CHECK(out.len == 0); /* refused before any byte */
	CHECK(decode(FORMAT_JSON, "", "<html></html>", 4, &out, &err) == -EIO);
	CHECK(decode(FORMAT_JSON, JSON_HEADERS, "{\"query_result\":{\"id\":1", 4, &out, &err) == -EIO);
	CHECK(strstr(err.message, "cut short") != NULL);
	CHECK(decode(FORMAT_JSON, JSON_HEADERS, "", 4, &out, &err) == -EIO);
	CHECK(decode(FORMAT_CSV, "Content-Type: text/csv\r\n", "", 4, &out, &err) == -EIO);
	buffer_free(&out);
}

void test_redash(void)
{
	test_source();
	test_execute_parameters();
	test_execute_replies();
	test_status();
	test_latest_and_results();
	test_errors();
	test_decoder();
}
