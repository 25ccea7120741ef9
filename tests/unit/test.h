/* test.h - a minimal unit test harness: CHECK records a failure and goes on. */
#ifndef EXECFS_TEST_H
#define EXECFS_TEST_H

#include <stdio.h>
#include <string.h>

extern int test_failures;
extern int test_checks;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		test_checks++;                                                       \
		if (!(cond)) {                                                       \
			test_failures++;                                             \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
		}                                                                    \
	} while (0)

#define CHECK_STR(a, b)                                                              \
	do {                                                                         \
		const char *a_ = (a), *b_ = (b);                                     \
		test_checks++;                                                       \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                             \
			test_failures++;                                             \
			fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
				a_ ? a_ : "(null)", b_ ? b_ : "(null)");             \
		}                                                                    \
	} while (0)

void test_jscan(void);
void test_jstream(void);
void test_dune(void);
void test_params(void);
void test_redash(void);
void test_worker(void);

#endif
