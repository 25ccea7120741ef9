/* test_main.c - runs every unit test suite. */
#include "test.h"

int test_failures;
int test_checks;

int main(void)
{
	test_jscan();
	test_jstream();
	test_dune();
	test_params();
	test_redash();
	test_worker();
	printf("%d checks, %d failed\n", test_checks, test_failures);
	printf("%d passed, %d failed\n", test_checks - test_failures, test_failures);
	return test_failures ? 1 : 0;
}
