/* test_jscan.c - the JSON span scanner. */
#include <errno.h>
#include "test.h"
#include "jscan.h"

static int valid(const char *text)
{
	struct jspan doc;

	return jscan_document(text, strlen(text), &doc) == 0;
}

void test_jscan(void)
{
	struct jspan doc, v, inner;
	const char *text = " {\"a\": [1, 2.5e3, -0, \"x\\u00e9\\n\"], \"b\": {\"c\": null}, \"n\": 2985646787349243786078} ";

	CHECK(valid(text));
	CHECK(valid("[]"));
	CHECK(valid("\"s\""));
	CHECK(valid("true"));
	CHECK(!valid(""));
	CHECK(!valid("{"));
	CHECK(!valid("{} {}"));
	CHECK(!valid("{\"a\":1,}"));
	CHECK(!valid("[01]"));
	CHECK(!valid("[1.]"));
	CHECK(!valid("\"tab\there\""));
	CHECK(!valid("\"\\x\""));
	CHECK(!valid("nul"));
	CHECK(!valid("{\"a\" 1}"));

	jscan_document(text, strlen(text), &doc);
	CHECK(jscan_find(doc, "n", &v) == 1);
	CHECK(v.len == 22 && memcmp(v.start, "2985646787349243786078", 22) == 0);
	CHECK(jscan_find(doc, "missing", &v) == 0);
	CHECK(jscan_find(doc, "a", &v) == 1);
	CHECK(jscan_array_inner(v, &inner) == 0);
	CHECK(inner.len == strlen("1, 2.5e3, -0, \"x\\u00e9\\n\""));
	CHECK(jscan_find(doc, "b", &v) == 1 && jscan_find(v, "c", &inner) == 1 &&
	      inner.len == 4 && memcmp(inner.start, "null", 4) == 0);

	/* array elements, bytes as written */
	{
		struct jscan_iter it;
		struct jspan a, e;
		const char *want[] = {"1", "2.5e3", "-0", "\"x\\u00e9\\n\""};
		int n = 0;

		CHECK(jscan_find(doc, "a", &a) == 1 && jscan_array_begin(a, &it) == 0);
		while (jscan_array_next(&it, &e) == 1) {
			CHECK(n < 4 && e.len == strlen(want[n]) && memcmp(e.start, want[n], e.len) == 0);
			n++;
		}
		CHECK(n == 4);
		CHECK(jscan_document("[]", 2, &a) == 0 && jscan_array_begin(a, &it) == 0 &&
		      jscan_array_next(&it, &e) == 0);
		CHECK(jscan_array_begin(doc, &it) == -EINVAL); /* an object */
		it.p = "1 2";
		it.end = it.p + 3;
		it.count = 0;
		CHECK(jscan_array_next(&it, &e) == 1 && jscan_array_next(&it, &e) == -EINVAL);
	}

	/* deep nesting is refused, not a stack overflow */
	{
		static char deep[20001];

		memset(deep, '[', 10000);
		memset(deep + 10000, ']', 10000);
		CHECK(!valid(deep));
	}
	{
		struct jspan empty;

		jscan_document("[ ]", 3, &doc);
		CHECK(jscan_array_inner(doc, &empty) == 0 && empty.len == 0);
	}
}
