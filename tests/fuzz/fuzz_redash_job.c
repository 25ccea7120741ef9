/* fuzz_redash_job.c - a Redash-compatible API's small JSON replies: the input
 * is one response body, read by every parser the engine calls on such a
 * reply (redash_backend_ops: status_parse on {"job": ...}, execute_parse on
 * {"job": ...} or {"query_result": ...}, latest_parse and execute_request
 * on the query document of GET /api/queries/<id>, cancel_parse, and
 * error_parse for error statuses on several calls), with and without a JSON
 * Content-Type. After a parse, the request for the result is built from the
 * ids it gave, as the engine does.
 */
#include "fuzz.h"

#include <cjson/cJSON.h>

static const char *const ok_headers[] = {
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\n", /* no Content-Type: the body is sniffed */
};

static const struct fuzz_error_reply errors[] = {
	{400, CALL_EXECUTE}, {401, CALL_STATUS}, {403, CALL_EXECUTE}, {404, CALL_LATEST},
	{404, CALL_RESULT}, {429, CALL_STATUS}, {500, CALL_STATUS}, {500, CALL_RESULT},
	{502, CALL_EXECUTE_PREPARE},
};

/* Values a user may write for a parameter, one of each kind, as params.c
 * hands them over. */
static const char *const written[] = {
	"\"7\"",
	"7",
	"\"a, b ,c\"",
	"[\"x\", 1, true]",
	"{\"start\": \"2024-01-01\", \"end\": \"2024-02-01\"}",
	"\"2024-01-01..2024-02-01\"",
	"\"d_last_7_days\"",
	"true",
	"null",
	"\" 2985646787349243786078 \"",
	"\"01\"",
	"\"1.\"",
};

static void check_info(const struct exec_info *info)
{
	FUZZ_ASSERT(memchr(info->execution_id, '\0', sizeof(info->execution_id)));
	FUZZ_ASSERT(memchr(info->query_id, '\0', sizeof(info->query_id)));
	FUZZ_ASSERT(memchr(info->result_id, '\0', sizeof(info->result_id)));
	FUZZ_ASSERT(info->state >= EXEC_UNKNOWN && info->state <= EXEC_EXPIRED);
	FUZZ_ASSERT(exec_state_from_word(exec_state_word(info->state)) == info->state);
	if (info->state == EXEC_SUCCESS)
		FUZZ_ASSERT(info->result_id[0] != '\0');
}

static void result_requests(const struct backend *b, const struct exec_info *info)
{
	struct api_request req;

	for (int f = 0; f < FORMAT_COUNT; f++) {
		if (b->ops->result_request(b, info, (enum result_format)f, &req) == 0)
			api_request_free(&req);
	}
}

/* Parameters for the definitions the query document names, a value of
 * each kind in turn; one more that the query does not define when extra. */
static cJSON *parameters_for(const char *body, size_t len, int extra)
{
	cJSON *doc = cJSON_ParseWithLength(body, len);
	cJSON *params = cJSON_CreateObject();
	const cJSON *options = cJSON_GetObjectItemCaseSensitive(doc, "options");
	const cJSON *def;
	size_t i = 0;

	if (!params)
		abort();
	cJSON_ArrayForEach(def, cJSON_GetObjectItemCaseSensitive(options, "parameters")) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(def, "name");
		cJSON *value;

		if (!cJSON_IsString(name) ||
		    cJSON_GetObjectItemCaseSensitive(params, name->valuestring))
			continue;
		value = cJSON_Parse(written[i++ % (sizeof(written) / sizeof(written[0]))]);
		if (!value || !cJSON_AddItemToObject(params, name->valuestring, value))
			abort();
	}
	if (extra && !cJSON_AddStringToObject(params, "no such parameter", "1"))
		abort();
	cJSON_Delete(doc);
	return params;
}

static void execute_requests(const struct backend *b, const struct api_response *resp)
{
	for (int round = 0; round < 3; round++) {
		cJSON *params = round ? parameters_for(resp->body, resp->len, round == 2) : NULL;
		struct api_request req = {0};
		struct api_error err;

		memset(&err, 0, sizeof(err));
		if (b->ops->execute_request(b, "1009", params, resp, &req, &err) == 0) {
			struct jspan doc;

			FUZZ_ASSERT(req.body != NULL && req.starts_run == 1);
			FUZZ_ASSERT(jscan_document(req.body, strlen(req.body), &doc) == 0);
			api_request_free(&req);
		} else {
			fuzz_check_error(&err);
		}
		cJSON_Delete(params);
	}
}

static void parse_replies(const struct backend *b, const struct api_response *resp)
{
	const struct backend_ops *ops = b->ops;
	struct exec_info info;
	struct api_error err;

	memset(&info, 0, sizeof(info));
	memset(&err, 0, sizeof(err));
	if (ops->status_parse(b, resp, &info, &err) == 0) {
		check_info(&info);
		FUZZ_ASSERT(info.document != NULL);
		result_requests(b, &info);
	} else {
		fuzz_check_error(&err);
	}
	exec_info_free(&info);

	memset(&info, 0, sizeof(info));
	memset(&err, 0, sizeof(err));
	if (ops->execute_parse(b, resp, &info, &err) == 0) {
		check_info(&info);
		FUZZ_ASSERT(info.execution_id[0] != '\0');
		result_requests(b, &info);
	} else {
		fuzz_check_error(&err);
	}
	exec_info_free(&info);

	memset(&info, 0, sizeof(info));
	memset(&err, 0, sizeof(err));
	if (ops->latest_parse(b, resp, &info, &err) == 0) {
		check_info(&info);
		FUZZ_ASSERT(info.state == EXEC_SUCCESS);
		result_requests(b, &info);
	} else {
		fuzz_check_error(&err);
	}
	exec_info_free(&info);

	execute_requests(b, resp);

	memset(&err, 0, sizeof(err));
	if (ops->cancel_parse(b, resp, &err))
		fuzz_check_error(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_small_replies("redash:https://query.nansen.ai", data, size, ok_headers,
			   sizeof(ok_headers) / sizeof(ok_headers[0]), errors,
			   sizeof(errors) / sizeof(errors[0]), parse_replies);
	return 0;
}
