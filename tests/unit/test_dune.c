/* test_dune.c - the Dune backend, driven from strings. */
#include "test.h"
#include "backend.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>

static struct api_response response(long status, const char *headers, const char *body)
{
	struct api_response r = {status, headers, body, strlen(body)};

	return r;
}

static struct backend dune(void)
{
	struct backend b;
	struct api_error err;

	backend_init(&b, "dune:http://127.0.0.1:8080", &err);
	return b;
}

/* Feeds pages to a decoder in chunks of `chunk` bytes; returns the file. */
static char *decode(enum result_format format, const char *const *pages, const char *const *headers,
		    int count, size_t chunk)
{
	struct backend b = dune();
	struct result_decoder *d = b.ops->decoder_new(&b, format);
	struct buffer out;
	struct api_error err;
	char *next = NULL;

	buffer_init(&out, 1 << 20);
	for (int i = 0; i < count; i++) {
		struct api_response resp = response(200, headers ? headers[i] : "", pages[i]);
		size_t len = strlen(pages[i]);

		d->ops->page_begin(d);
		for (size_t off = 0; off < len; off += chunk)
			CHECK(d->ops->page_data(d, pages[i] + off, len - off < chunk ? len - off : chunk,
						&out, &err) == 0);
		CHECK(d->ops->page_end(d, &resp, &out, &next, &err) == 0);
		CHECK((next != NULL) == (i < count - 1));
		free(next);
		next = NULL;
	}
	CHECK(d->ops->finish(d, &out, &err) == 0);
	d->ops->free(d);
	return out.data ? out.data : strdup("");
}

static void test_source(void)
{
	struct backend b;
	struct api_error err;

	CHECK(backend_init(&b, "dune", &err) == 0);
	CHECK_STR(b.base_url, "https://api.dune.com/api/v1");
	CHECK(backend_init(&b, "dune:http://127.0.0.1:8080", &err) == 0);
	CHECK_STR(b.base_url, "http://127.0.0.1:8080/api/v1");
	CHECK(backend_init(&b, "dune:http://127.0.0.1:8080/custom/v1/", &err) == 0);
	CHECK_STR(b.base_url, "http://127.0.0.1:8080/custom/v1");
	CHECK(backend_same_origin(&b, "http://127.0.0.1:8080/api/v1/x?limit=1"));
	CHECK(!backend_same_origin(&b, "http://127.0.0.1:8081/api/v1/x"));
	CHECK(!backend_same_origin(&b, "http://127.0.0.1:8080.evil.com/x"));
	CHECK(!backend_same_origin(&b, "ftp://127.0.0.1:8080/x"));

	/* a next page: the same origin (its host in any case), the same path */
	CHECK(backend_init(&b, "dune:https://API.Dune.com", &err) == 0);
	CHECK(backend_next_page_ok(&b, "https://API.Dune.com/api/v1/execution/01X/results/csv?limit=5",
				   "https://api.dune.com/api/v1/execution/01X/results/csv?offset=5&limit=5"));
	CHECK(backend_next_page_ok(&b, "https://api.dune.com/api/v1/execution/01X/results?offset=5",
				   "https://API.DUNE.COM/api/v1/execution/01X/results"));
	CHECK(!backend_next_page_ok(&b, "https://api.dune.com/api/v1/execution/01X/results/csv",
				    "https://api.dune.com/api/v1/execution/01Y/results/csv?offset=5"));
	CHECK(!backend_next_page_ok(&b, "https://api.dune.com/api/v1/execution/01X/results/csv",
				    "https://api.dune.com/api/v1/execution/01X/RESULTS/csv?offset=5"));
	CHECK(!backend_next_page_ok(&b, "https://api.dune.com/api/v1/execution/01X/results/csv",
				    "https://api.dune.com/api/v1/execution/01X/results/csv/x"));
	CHECK(!backend_next_page_ok(&b, "https://api.dune.com/api/v1/execution/01X/results/csv",
				    "https://evil.com/api/v1/execution/01X/results/csv?offset=5"));
	CHECK(!backend_next_page_ok(&b, "https://api.dune.com/api/v1/execution/01X/results/csv",
				    "https://u@api.dune.com/api/v1/execution/01X/results/csv"));
	CHECK(!backend_next_page_ok(&b, "https://api.dune.com/api/v1/execution/01X/results/csv",
				    "/api/v1/execution/01X/results/csv?offset=5"));
	CHECK(backend_init(&b, "dune:ftp://x", &err) == -EINVAL);
	CHECK(backend_init(&b, "nosuch", &err) == -EINVAL);
	CHECK(strstr(err.message, "nosuch") != NULL);
}

static void test_requests(void)
{
	struct backend b = dune();
	struct api_request req;
	struct api_error err;
	cJSON *params = cJSON_Parse("{\"days\":7}");

	strcpy(b.performance, "large");
	CHECK(b.ops->execute_request(&b, "1215383", params, NULL, &req, &err) == 0);
	CHECK_STR(req.method, "POST");
	CHECK_STR(req.url, "http://127.0.0.1:8080/api/v1/query/1215383/execute");
	CHECK_STR(req.body, "{\"query_parameters\":{\"days\":7},\"performance\":\"large\"}");
	CHECK(req.starts_run == 1);
	api_request_free(&req);
	cJSON_Delete(params);

	CHECK(b.ops->status_request(&b, "01ABC", &req) == 0);
	CHECK_STR(req.url, "http://127.0.0.1:8080/api/v1/execution/01ABC/status");
	CHECK(req.starts_run == 0);
	api_request_free(&req);
	CHECK(b.ops->cancel_request(&b, "01ABC", &req) == 0);
	CHECK_STR(req.method, "POST");
	api_request_free(&req);

	{
		char *line = b.ops->auth_header("sekrit");

		CHECK_STR(line, "X-Dune-API-Key: sekrit");
		free(line);
	}
}

static void test_status(void)
{
	struct backend b = dune();
	struct exec_info info = {0};
	struct api_error err;
	struct api_response r = response(200, "Content-Type: application/json\r\n",
		"{\"execution_id\": \"01K85QHSS0RBGW4BHDM0RFCG9C\", \"query_id\": 6012998,"
		" \"is_execution_finished\": true, \"state\": \"QUERY_STATE_FAILED\","
		" \"execution_ended_at\": \"2025-10-22T10:31:04.222464Z\","
		" \"error\": {\"type\": \"FAILED_TYPE_EXECUTION_FAILED\","
		" \"message\": \"line 1:8: Column 'x' cannot be resolved\"}}");

	CHECK(b.ops->status_parse(&b, &r, &info, &err) == 0);
	CHECK(info.state == EXEC_FAILURE);
	CHECK_STR(info.query_id, "6012998");
	CHECK_STR(info.execution_id, "01K85QHSS0RBGW4BHDM0RFCG9C");
	CHECK_STR(info.error_message, "line 1:8: Column 'x' cannot be resolved");
	CHECK(info.ended_at == 1761129064);
	CHECK(info.document && strstr(info.document, "QUERY_STATE_FAILED"));
	exec_info_free(&info);

	static const struct {
		const char *name;
		enum exec_state state;
	} states[] = {
		{"QUERY_STATE_PENDING", EXEC_PENDING},   {"QUERY_STATE_EXECUTING", EXEC_RUNNING},
		{"QUERY_STATE_COMPLETED", EXEC_SUCCESS}, {"QUERY_STATE_COMPLETED_PARTIAL", EXEC_PARTIAL},
		{"QUERY_STATE_CANCELLED", EXEC_CANCELLED}, {"QUERY_STATE_CANCELED", EXEC_CANCELLED},
		{"QUERY_STATE_EXPIRED", EXEC_EXPIRED},   {"QUERY_STATE_SOMETHING_NEW", EXEC_PENDING},
	};
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		char body[256];

		snprintf(body, sizeof(body), "{\"state\": \"%s\"}", states[i].name);
		r = response(200, "", body);
		memset(&info, 0, sizeof(info));
		CHECK(b.ops->status_parse(&b, &r, &info, &err) == 0);
		CHECK(info.state == states[i].state);
		exec_info_free(&info);
	}
	CHECK(!exec_state_is_terminal(EXEC_UNKNOWN));
	/* an unknown state that the API says is final is a broken reply */
	r = response(200, "", "{\"state\": \"QUERY_STATE_SOMETHING_NEW\", \"is_execution_finished\": true}");
	memset(&info, 0, sizeof(info));
	CHECK(b.ops->status_parse(&b, &r, &info, &err) == -EIO);
	CHECK(strstr(err.message, "QUERY_STATE_SOMETHING_NEW") != NULL);
	exec_info_free(&info);
	r = response(200, "", "{\"state\": \"QUERY_STATE_SOMETHING_NEW\", \"is_execution_finished\": false}");
	memset(&info, 0, sizeof(info));
	CHECK(b.ops->status_parse(&b, &r, &info, &err) == 0);
	CHECK(info.state == EXEC_PENDING && !info.error_message);
	exec_info_free(&info);

	/* tolerant: nulls and odd types do not crash, a missing state is an error */
	r = response(200, "", "{\"state\": null, \"query_id\": null, \"error\": null}");
	memset(&info, 0, sizeof(info));
	CHECK(b.ops->status_parse(&b, &r, &info, &err) == -EIO);
	exec_info_free(&info);
	r = response(200, "Content-Type: text/html\r\n", "<html>oops</html>");
	CHECK(b.ops->status_parse(&b, &r, &info, &err) == -EIO);
	CHECK(strstr(err.message, "JSON") != NULL);
}

static void test_errors(void)
{
	struct backend b = dune();
	struct api_error err;
	static const struct {
		long status;
		const char *body;
		int err;
		const char *message;
	} cases[] = {
		{400, "{\"error\": \"unknown parameters (x)\"}", EINVAL, "unknown parameters (x)"},
		{401, "{\"error\": \"invalid API Key\"}", EACCES, "invalid API Key"},
		{402, "{\"error\": \"This api request would exceed your configured limits\"}", EDQUOT, NULL},
		{403, "{\"error\": \"Not allowed to execute query.\"}", EACCES, NULL},
		{404, "{\"error\": \"not found: Query not found or private\"}", ENOENT, NULL},
		{404, "{\"error\": \"not found: No execution found for the latest version of the given query\"}",
		 ENODATA, NULL},
		{429, "", EAGAIN, "HTTP 429"},
		{500, "{\"error\": \"An internal error occurred\"}", EIO, "An internal error occurred"},
		{502, "<html>bad gateway</html>", EIO, "HTTP 502 with a non-JSON body"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct api_response r = response(cases[i].status, "", cases[i].body);

		b.ops->error_parse(&b, CALL_STATUS, &r, &err);
		CHECK(err.err == cases[i].err);
		if (cases[i].message)
			CHECK_STR(err.message, cases[i].message);
	}
}

static void test_csv_pages(void)
{
	const char *pages[] = {"n,name\n1,a\n2,\"b,\nc\"\n", "n,name\n3,c\n", "n,name\n"};
	const char *headers[] = {"x-dune-next-uri: http://127.0.0.1:8080/api/v1/next?offset=2\r\n",
				 "X-Dune-Next-Uri: http://127.0.0.1:8080/api/v1/next?offset=3\r\n", ""};
	const char *want = "n,name\n1,a\n2,\"b,\nc\"\n3,c\n";

	for (size_t chunk = 1; chunk <= 32; chunk += 3) {
		char *got = decode(FORMAT_CSV, pages, headers, 3, chunk);

		CHECK_STR(got, want);
		free(got);
	}
	/* a header with a quoted newline is dropped whole */
	{
		const char *p2[] = {"\"a\nb\",c\n1,2\n", "\"a\nb\",c\n3,4\n"};
		const char *h2[] = {"x-dune-next-uri: http://127.0.0.1:8080/n\r\n", ""};
		char *got = decode(FORMAT_CSV, p2, h2, 2, 5);

		CHECK_STR(got, "\"a\nb\",c\n1,2\n3,4\n");
		free(got);
	}
}

/* The next link as followed: allow_partial_results kept when a link drops it. */
static void test_next_links(void)
{
	static const struct {
		const char *link, *want;
	} cases[] = {
		{"http://127.0.0.1:8080/api/v1/execution/01X/results/csv?offset=2&limit=2",
		 "http://127.0.0.1:8080/api/v1/execution/01X/results/csv?offset=2&limit=2&allow_partial_results=true"},
		{"http://127.0.0.1:8080/api/v1/execution/01X/results/csv",
		 "http://127.0.0.1:8080/api/v1/execution/01X/results/csv?allow_partial_results=true"},
		{"http://127.0.0.1:8080/api/v1/execution/01X/results/csv?allow_partial_results=true&offset=2",
		 "http://127.0.0.1:8080/api/v1/execution/01X/results/csv?allow_partial_results=true&offset=2"},
	};
	struct backend b = dune();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct result_decoder *d = b.ops->decoder_new(&b, FORMAT_CSV);
		char headers[512], *ahead, *next = NULL;
		struct api_response resp;
		struct api_error err;
		struct buffer out;

		snprintf(headers, sizeof(headers), "x-dune-next-uri: %s\r\n", cases[i].link);
		resp = response(200, headers, "n\n1\n2\n");
		buffer_init(&out, 1 << 16);
		d->ops->page_begin(d);
		ahead = d->ops->next_from_headers(d, &resp);
		CHECK_STR(ahead, cases[i].want);
		CHECK(d->ops->page_data(d, resp.body, resp.len, &out, &err) == 0);
		CHECK(d->ops->page_end(d, &resp, &out, &next, &err) == 0);
		CHECK(next && strcmp(next, cases[i].want) == 0);
		free(ahead);
		free(next);
		buffer_free(&out);
		d->ops->free(d);
	}
}

static void test_json_pages(void)
{
	const char *pages[] = {
		"{\"execution_id\": \"01X\", \"state\": \"QUERY_STATE_COMPLETED\", \"result\": {\"rows\": "
		"[{\"big\": 2985646787349243786078, \"s\": \"a\\u00e9\"}], \"metadata\": {\"column_names\": "
		"[\"big\", \"s\"], \"row_count\": 1, \"total_row_count\": 3, \"result_set_bytes\": 10, "
		"\"total_result_set_bytes\": 30}}, \"next_offset\": 1, \"next_uri\": "
		"\"http:\\/\\/127.0.0.1:8080\\/api\\/v1\\/execution\\/01X\\/results?offset=1\"}",
		"{\"execution_id\": \"01X\", \"result\": {\"rows\": [{\"big\": 1, \"s\": null}, {\"big\": 2, "
		"\"s\": \"x\"}], \"metadata\": {\"row_count\": 2}}, \"next_uri\": "
		"\"http://127.0.0.1:8080/api/v1/execution/01X/results?offset=3\"}",
		"{\"execution_id\": \"01X\", \"result\": {\"rows\": [], \"metadata\": {\"row_count\": 0}}}",
	};
	const char *want =
		"{\"execution_id\":\"01X\",\"state\":\"QUERY_STATE_COMPLETED\",\"result\":{\"rows\":["
		"{\"big\": 2985646787349243786078, \"s\": \"a\\u00e9\"},{\"big\": 1, \"s\": null}, "
		"{\"big\": 2, \"s\": \"x\"}],\"metadata\":{\"column_names\":[\"big\", \"s\"],"
		"\"row_count\":3,\"total_row_count\":3,\"result_set_bytes\":30,"
		"\"total_result_set_bytes\":30}}}";
	char *got = decode(FORMAT_JSON, pages, NULL, 3, 7);
	cJSON *doc = cJSON_Parse(got);

	CHECK_STR(got, want);
	CHECK(doc && cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "result"), "rows")) == 3);
	cJSON_Delete(doc);
	free(got);

	/* NDJSON: the same pages, a row a line, bytes as sent */
	got = decode(FORMAT_NDJSON, pages, NULL, 3, 5);
	CHECK_STR(got, "{\"big\": 2985646787349243786078, \"s\": \"a\\u00e9\"}\n"
		       "{\"big\": 1, \"s\": null}\n{\"big\": 2, \"s\": \"x\"}\n");
	free(got);

	/* a broken page is an error, never a short document */
	{
		struct backend b = dune();
		struct result_decoder *d = b.ops->decoder_new(&b, FORMAT_JSON);
		struct buffer out;
		struct api_error err;
		char *next = NULL;
		const char *bad = "{\"result\": {\"rows\": [1, 2";
		struct api_response r = response(200, "", bad);

		buffer_init(&out, 1 << 20);
		d->ops->page_begin(d);
		d->ops->page_data(d, bad, strlen(bad), &out, &err);
		CHECK(d->ops->page_end(d, &r, &out, &next, &err) == -EIO);
		CHECK(err.err == EIO);
		d->ops->free(d);
		buffer_free(&out);
	}
}

/* One CSV page after a first one: page_end's answer. */
static int csv_second_page_end(const char *body)
{
	struct backend b = dune();
	struct result_decoder *d = b.ops->decoder_new(&b, FORMAT_CSV);
	const char *first = "n,s\n1,a\n";
	struct api_response r1 = response(200, "x-dune-next-uri: http://127.0.0.1:8080/api/v1/x\r\n", first);
	struct api_response r2 = response(200, "", "");
	struct buffer out;
	struct api_error err;
	char *next = NULL;
	int rc;

	buffer_init(&out, 1 << 20);
	d->ops->page_begin(d);
	d->ops->page_data(d, first, strlen(first), &out, &err);
	CHECK(d->ops->page_end(d, &r1, &out, &next, &err) == 0);
	free(next);
	next = NULL;
	d->ops->page_begin(d);
	if (*body)
		d->ops->page_data(d, body, strlen(body), &out, &err);
	rc = d->ops->page_end(d, &r2, &out, &next, &err); /* streamed: no body in resp */
	free(next);
	d->ops->free(d);
	buffer_free(&out);
	return rc;
}

static void test_csv_cut_pages(void)
{
	CHECK(csv_second_page_end("n,s\n2,b\n") == 0);
	CHECK(csv_second_page_end("n,s\n") == 0);		/* offset past the end: no rows */
	CHECK(csv_second_page_end("") == -EIO);			/* not even the header */
	CHECK(csv_second_page_end("n,s") == -EIO);		/* header cut */
	CHECK(csv_second_page_end("n,s\n2,b") == -EIO);	/* last row cut */
	CHECK(csv_second_page_end("n,\"s\n\"\n") == 0);	/* a quoted break in the header */
}

static void test_latest(void)
{
	struct backend b = dune();
	struct exec_info info = {0};
	struct api_error err;
	struct api_response r = response(200, "",
		"{\"execution_id\": \"01LATEST\", \"query_id\": 7, \"state\": \"QUERY_STATE_COMPLETED\","
		" \"result\": {\"rows\": [{\"a\": 1}]}}");

	CHECK(b.ops->latest_parse(&b, &r, &info, &err) == 0);
	CHECK_STR(info.execution_id, "01LATEST");
	exec_info_free(&info);
}

void test_dune(void)
{
	test_source();
	test_requests();
	test_status();
	test_errors();
	test_csv_pages();
	test_next_links();
	test_json_pages();
	test_latest();
	test_csv_cut_pages();
}
