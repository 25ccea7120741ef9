/* fuzz_redash_result.c - a Redash query result through the decoder of
 * results.csv, results.json and results.ndjson
 * (redash_backend_ops.decoder_new: page_begin, page_headers on the header
 * lines, page_data, page_end, and finish, which turns the JSON document into
 * NDJSON with jscan and result_rows_ndjson()).
 *
 * Input: see fuzz.h; mode bits 0-1 pick the format (0 CSV, 1 JSON, 2 and 3
 * NDJSON); the page is "header lines\r\n\r\nbody" (Redash sends one page;
 * more are ignored). CSV and JSON pass through byte for byte; NDJSON is one
 * value a line, a line for each of query_result.data.rows.
 */
#include "fuzz.h"

static size_t result_rows(const struct fuzz_page *page)
{
	struct jspan doc, result, data, rows;

	FUZZ_ASSERT(jscan_document(page->body, page->len, &doc) == 0);
	FUZZ_ASSERT(jscan_find(doc, "query_result", &result) == 1);
	FUZZ_ASSERT(jscan_find(result, "data", &data) == 1);
	FUZZ_ASSERT(jscan_find(data, "rows", &rows) == 1);
	return fuzz_count_elements(rows);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum result_format formats[] = {FORMAT_CSV, FORMAT_JSON, FORMAT_NDJSON,
						     FORMAT_NDJSON};
	static struct backend b;
	struct fuzz_page pages[FUZZ_MAX_PAGES];
	struct fuzz_plan plan = {0};
	struct fuzz_decoded res;
	struct api_error err;
	enum result_format format;
	int count;

	if (size < FUZZ_PLAN_LEN)
		return 0;
	if (!b.ops && backend_init(&b, "redash:https://query.nansen.ai", &err))
		abort();
	plan.mode = data[0];
	memcpy(plan.sizes, data + 1, sizeof(plan.sizes));
	format = formats[plan.mode & FUZZ_MODE_FORMAT];
	count = fuzz_pages(data + FUZZ_PLAN_LEN, size - FUZZ_PLAN_LEN, 1, pages);

	fuzz_decode_twice(&b, format, &plan, pages, count, &res);
	if (res.rc == 0) {
		FUZZ_ASSERT(res.pages == 1);
		if (format == FORMAT_NDJSON) {
			FUZZ_ASSERT(fuzz_check_ndjson(res.out.data ? res.out.data : "",
						      res.out.len) == result_rows(&pages[0]));
		} else {
			FUZZ_ASSERT(res.out.len == pages[0].len);
			FUZZ_ASSERT(!res.out.len ||
				    memcmp(res.out.data, pages[0].body, res.out.len) == 0);
		}
	}
	buffer_free(&res.out);
	fuzz_pages_free(pages, count);
	return 0;
}
