/* fuzz_dune_json.c - Dune's JSON result pages through the decoder of
 * results.json and results.ndjson (dune_backend_ops.decoder_new: the JSON
 * decoder's page_begin, page_data, page_end, finish).
 *
 * Input: see fuzz.h; mode bit 0 picks NDJSON. Pages have no headers (the
 * JSON decoder reads none). When every page is a valid document the decoder
 * accepts, the file must be valid JSON (or one value a line) holding every
 * row of every page, however the bytes were split.
 */
#include "fuzz.h"

/* The rows a page holds, when the decoder took it (result.rows exists). */
static size_t page_rows(const struct fuzz_page *page)
{
	struct jspan doc, result, rows;

	FUZZ_ASSERT(jscan_document(page->body, page->len, &doc) == 0);
	FUZZ_ASSERT(jscan_find(doc, "result", &result) == 1);
	FUZZ_ASSERT(jscan_find(result, "rows", &rows) == 1);
	return fuzz_count_elements(rows);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct backend b;
	struct fuzz_page pages[FUZZ_MAX_PAGES];
	struct fuzz_plan plan = {0};
	struct fuzz_decoded res;
	struct api_error err;
	enum result_format format;
	size_t rows = 0;
	int count;

	if (size < FUZZ_PLAN_LEN)
		return 0;
	if (!b.ops && backend_init(&b, "dune:https://api.dune.com", &err))
		abort();
	plan.mode = data[0];
	memcpy(plan.sizes, data + 1, sizeof(plan.sizes));
	format = plan.mode & 1 ? FORMAT_NDJSON : FORMAT_JSON;
	count = fuzz_pages(data + FUZZ_PLAN_LEN, size - FUZZ_PLAN_LEN, 0, pages);

	fuzz_decode_twice(&b, format, &plan, pages, count, &res);
	if (res.rc == 0) {
		for (int i = 0; i < res.pages; i++)
			rows += page_rows(&pages[i]);
		if (format == FORMAT_NDJSON) {
			FUZZ_ASSERT(fuzz_check_ndjson(res.out.data ? res.out.data : "",
						      res.out.len) == rows);
		} else {
			struct jspan doc, result, all;

			FUZZ_ASSERT(jscan_document(res.out.data, res.out.len, &doc) == 0);
			FUZZ_ASSERT(jscan_find(doc, "result", &result) == 1);
			FUZZ_ASSERT(jscan_find(result, "rows", &all) == 1);
			FUZZ_ASSERT(fuzz_count_elements(all) == rows);
		}
	}
	buffer_free(&res.out);
	fuzz_pages_free(pages, count);
	return 0;
}
