/* fuzz_dune_status.c - the Dune API's small JSON replies: the input is one
 * response body, read by every parser the engine calls on such a reply
 * (dune_backend_ops: status_parse, latest_parse, execute_parse,
 * cancel_parse, and error_parse for error statuses on several calls), with
 * and without a JSON Content-Type. After a status, the request for its result is built
 * from the ids it gave, as the engine does.
 */
#include "fuzz.h"

static const char *const ok_headers[] = {
	"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\n", /* no Content-Type: the body is sniffed */
};

static const struct fuzz_error_reply errors[] = {
	{400, CALL_EXECUTE}, {401, CALL_STATUS}, {402, CALL_EXECUTE}, {403, CALL_EXECUTE},
	{404, CALL_LATEST}, {404, CALL_STATUS}, {409, CALL_RESULT}, {429, CALL_RESULT},
	{500, CALL_CANCEL}, {502, CALL_STATUS},
};

static void check_info(const struct exec_info *info)
{
	FUZZ_ASSERT(memchr(info->execution_id, '\0', sizeof(info->execution_id)));
	FUZZ_ASSERT(memchr(info->query_id, '\0', sizeof(info->query_id)));
	FUZZ_ASSERT(memchr(info->result_id, '\0', sizeof(info->result_id)));
	FUZZ_ASSERT(info->state >= EXEC_UNKNOWN && info->state <= EXEC_EXPIRED);
	FUZZ_ASSERT(exec_state_from_word(exec_state_word(info->state)) == info->state);
}

static void parse_replies(const struct backend *b, const struct api_response *resp)
{
	const struct backend_ops *ops = b->ops;
	struct exec_info info;
	struct api_request req;
	struct api_error err;

	memset(&info, 0, sizeof(info));
	memset(&err, 0, sizeof(err));
	if (ops->status_parse(b, resp, &info, &err) == 0) {
		check_info(&info);
		FUZZ_ASSERT(info.document != NULL);
		for (int f = 0; f < FORMAT_COUNT; f++) {
			if (ops->result_request(b, &info, (enum result_format)f, &req) == 0)
				api_request_free(&req);
		}
	} else {
		fuzz_check_error(&err);
	}
	exec_info_free(&info);

	memset(&info, 0, sizeof(info));
	memset(&err, 0, sizeof(err));
	if (ops->latest_parse(b, resp, &info, &err) == 0) {
		check_info(&info);
		FUZZ_ASSERT(info.execution_id[0] != '\0');
		FUZZ_ASSERT(info.state == EXEC_SUCCESS || info.state == EXEC_PARTIAL);
	} else {
		fuzz_check_error(&err);
	}
	exec_info_free(&info);

	memset(&info, 0, sizeof(info));
	memset(&err, 0, sizeof(err));
	if (ops->execute_parse(b, resp, &info, &err) == 0) {
		check_info(&info);
		FUZZ_ASSERT(info.execution_id[0] != '\0');
	} else {
		fuzz_check_error(&err);
	}
	exec_info_free(&info);

	memset(&err, 0, sizeof(err));
	if (ops->cancel_parse(b, resp, &err))
		fuzz_check_error(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_small_replies("dune:https://api.dune.com", data, size, ok_headers,
			   sizeof(ok_headers) / sizeof(ok_headers[0]), errors,
			   sizeof(errors) / sizeof(errors[0]), parse_replies);
	return 0;
}
