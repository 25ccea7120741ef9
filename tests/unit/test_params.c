/* test_params.c - the three input forms of `execute`. */
#include "test.h"
#include "params.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *text, cJSON **params, char *why)
{
	return params_parse(text, strlen(text), params, why, 256);
}

static int incomplete(const char *text)
{
	return params_incomplete(text, strlen(text));
}

void test_params(void)
{
	cJSON *p = NULL;
	char why[256];

	CHECK(parse("", &p, why) == 0 && p == NULL);
	CHECK(parse(" \n\t\n", &p, why) == 0 && p == NULL);

	CHECK(parse("{\"days\": 7, \"chain\": \"ethereum\"}\n", &p, why) == 0);
	CHECK(cJSON_IsNumber(cJSON_GetObjectItem(p, "days")));
	CHECK_STR(cJSON_GetObjectItem(p, "chain")->valuestring, "ethereum");
	cJSON_Delete(p);

	CHECK(parse("days=7\nchain = base\r\nnote=a=b c\n", &p, why) == 0);
	CHECK_STR(cJSON_GetObjectItem(p, "days")->valuestring, "7");
	CHECK_STR(cJSON_GetObjectItem(p, "chain")->valuestring, " base");
	CHECK_STR(cJSON_GetObjectItem(p, "note")->valuestring, "a=b c");
	cJSON_Delete(p);

	CHECK(params_blank(" \r\n\t", 4) && params_blank("", 0) && !params_blank(" x", 2));

	/* a write that leaves an object unfinished: a piece, or a mistake */
	CHECK(params_piece("{\"days\": 2,", 11));		/* os.write of parts */
	CHECK(!params_piece("{\"days\": 3\n", 11));		/* echo: a whole line */
	{
		char full[4096];

		memset(full, ' ', sizeof(full));
		full[0] = '{';
		full[sizeof(full) - 1] = '\n';
		CHECK(params_piece(full, sizeof(full)));	/* stdio's full buffer */
		CHECK(!params_piece(full + 1, sizeof(full) - 1));
	}

	/* a byte order mark first is not part of the request */
	CHECK(parse("\xEF\xBB\xBF" "days=7\n", &p, why) == 0);
	CHECK_STR(cJSON_GetObjectItem(p, "days")->valuestring, "7");
	cJSON_Delete(p);
	CHECK(parse("\xEF\xBB\xBF{\"days\": 7}", &p, why) == 0);
	CHECK(cJSON_IsNumber(cJSON_GetObjectItem(p, "days")));
	cJSON_Delete(p);
	CHECK(incomplete("\xEF\xBB\xBF{\"days\":"));

	CHECK(parse("days=", &p, why) == 0);
	CHECK_STR(cJSON_GetObjectItem(p, "days")->valuestring, "");
	cJSON_Delete(p);

	CHECK(parse("{\"days\": 7", &p, why) == -EINVAL && p == NULL);
	CHECK(strstr(why, "JSON") != NULL);
	CHECK(parse("[1, 2]", &p, why) == -EINVAL);
	CHECK(strstr(why, "object") != NULL);
	CHECK(parse("{\"a\":1} junk", &p, why) == -EINVAL);
	CHECK(parse("just words", &p, why) == -EINVAL);
	CHECK(parse("=7", &p, why) == -EINVAL);
	CHECK(parse("a=1\na=2", &p, why) == -EINVAL);
	CHECK(params_parse("a=1\0b=2", 7, &p, why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, "NUL") != NULL);
	{
		size_t big = PARAMS_MAX_INPUT + 1;
		char *text = malloc(big);

		memset(text, ' ', big);
		CHECK(params_parse(text, big, &p, why, sizeof(why)) == -EINVAL);
		free(text);
	}

	/* UTF-8 only: stray bytes, overlong forms, surrogates are refused */
	CHECK(parse("chain=caf\xc3\xa9", &p, why) == 0);
	cJSON_Delete(p);
	CHECK(parse("chain=\xff\xfe", &p, why) == -EINVAL && strstr(why, "UTF-8"));
	CHECK(parse("chain=caf\xc3", &p, why) == -EINVAL);
	CHECK(parse("chain=\xc0\xaf", &p, why) == -EINVAL);
	CHECK(parse("chain=\xed\xa0\x80", &p, why) == -EINVAL);
	CHECK(parse("chain=\xf4\x90\x80\x80", &p, why) == -EINVAL);
	CHECK(parse("{\"chain\": \"\xc3\x28\"}", &p, why) == -EINVAL);

	/* a name twice is refused in both forms */
	CHECK(parse("{\"days\": 1, \"days\": 2}", &p, why) == -EINVAL && p == NULL);
	CHECK(strstr(why, "twice") != NULL);

	/* a JSON object cut short may be continued by the next write() */
	CHECK(incomplete("{"));
	CHECK(incomplete(" {\"days\": 7, \"ch"));
	CHECK(incomplete("{\"a\": \"x\\"));
	CHECK(incomplete("{\"a\": tr"));
	CHECK(incomplete("{\"a\": -"));
	CHECK(!incomplete("{\"a\": 1}"));
	CHECK(!incomplete("{\"a\" 1"));	/* broken, not cut short */
	CHECK(!incomplete("{\"a\": tx"));
	CHECK(!incomplete("days=7"));
	CHECK(!incomplete("[1,"));		/* not an object */
	CHECK(!incomplete(""));
}
