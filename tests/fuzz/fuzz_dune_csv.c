/* fuzz_dune_csv.c - Dune's CSV result pages through the decoder of
 * results.csv (dune_backend_ops.decoder_new(FORMAT_CSV): page_begin,
 * next_from_headers on the page's header lines, page_data, page_end, which
 * reads x-dune-next-uri, and finish), and the header lookup
 * api_response_header() they use.
 *
 * Input: see fuzz.h; each page is "header lines\r\n\r\nbody". The file must
 * not depend on how the bytes were split, and must be the first page whole,
 * then every later page without its header row.
 */
#include "fuzz.h"

/* The body after its header row: the first line end outside quotes. */
static size_t header_row_len(const struct fuzz_page *page)
{
	int quoted = 0;

	for (size_t i = 0; i < page->len; i++) {
		if (page->body[i] == '"')
			quoted = !quoted;
		else if (page->body[i] == '\n' && !quoted)
			return i + 1;
	}
	return page->len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct backend b;
	struct fuzz_page pages[FUZZ_MAX_PAGES];
	struct fuzz_plan plan = {0};
	struct fuzz_decoded res;
	struct api_error err;
	int count;

	if (size < FUZZ_PLAN_LEN)
		return 0;
	if (!b.ops && backend_init(&b, "dune:https://api.dune.com", &err))
		abort();
	plan.mode = data[0];
	memcpy(plan.sizes, data + 1, sizeof(plan.sizes));
	count = fuzz_pages(data + FUZZ_PLAN_LEN, size - FUZZ_PLAN_LEN, 1, pages);

	fuzz_decode_twice(&b, FORMAT_CSV, &plan, pages, count, &res);
	if (res.rc == 0) {
		size_t at = 0;

		for (int i = 0; i < res.pages; i++) {
			size_t skip = i ? header_row_len(&pages[i]) : 0;
			size_t len = pages[i].len - skip;

			FUZZ_ASSERT(at + len <= res.out.len);
			FUZZ_ASSERT(!len ||
				    memcmp(res.out.data + at, pages[i].body + skip, len) == 0);
			at += len;
		}
		FUZZ_ASSERT(at == res.out.len);
	}
	buffer_free(&res.out);
	fuzz_pages_free(pages, count);
	return 0;
}
