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
	CHECK(jscan_document("[\"a\\\0b\"]", 8, &doc) != 0); /* a backslash, then a NUL */
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

/* jstream agrees with jscan_document on every text, fed whole and split. */
static int stream_ok(const char *text, size_t len, size_t split)
{
	struct jstream s;

	jstream_init(&s);
	if (split > len)
		split = len;
	if (jstream_feed(&s, text, split) || jstream_feed(&s, text + split, len - split))
		return 0;
	return jstream_end(&s) == 0;
}

void test_jstream(void)
{
	static const char *const texts[] = {
		"{}", "[]", " {\"a\": [1, -2.5e+3, true, false, null, \"x\\u00e9\\n\"]} ", "0", "-0",
		"12", "1.5", "1e5", "1E-5", "\"s\"", "[[[]]]", "{\"a\":{\"b\":{}}}",
		"{\"query_result\": {\"data\": {\"rows\": [{\"n\": 1}, {\"n\": 99999999999999999999}]}}}",
		/* broken */
		"", " ", "{", "}", "[1,]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1 2]", "01", "1.",
		"-", "1e", "1e+", ".5", "+1", "tru", "truex", "nul", "\"abc", "\"a\\x\"", "\"\\u12g4\"",
		"{\"a\":1}}", "[1]]", "{]", "[}", "{\"a\":1} x", "\"a\nb\"", "{1:2}", "[\"\\u00\"]",
		"<html>", "NaN", "Infinity",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct jspan v;
		size_t len = strlen(texts[i]);
		int want = jscan_document(texts[i], len, &v) == 0;
		int all = 1;

		for (size_t split = 0; split <= len; split++)
			all &= stream_ok(texts[i], len, split) == want;
		CHECK(all);
		if (!all)
			fprintf(stderr, "  jstream disagrees on: %s\n", texts[i]);
	}
	{
		/* deeper than the limit */
		char deep[600];
		struct jstream s;

		memset(deep, '[', 300);
		memset(deep + 300, ']', 300);
		jstream_init(&s);
		CHECK(jstream_feed(&s, deep, sizeof(deep)) == -EINVAL);
	}
}
