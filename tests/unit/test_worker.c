/* test_worker.c - the worker thread: jobs in order, never run in the caller. */
#include "test.h"
#include "worker.h"

#include <pthread.h>

static int ran[4], order;
static pthread_t caller;
static int in_caller;

static void job(void *data)
{
	int *slot = data;

	*slot = ++order;
	if (pthread_equal(pthread_self(), caller))
		in_caller = 1;
}

void test_worker(void)
{
	caller = pthread_self();
	/* no thread: refused, and not run in line (a caller holding a lock the
	 * job takes would deadlock) */
	CHECK(worker_submit(job, &ran[0]) != 0);
	CHECK(ran[0] == 0);
	CHECK(worker_start() == 0);
	for (int i = 1; i < 4; i++)
		CHECK(worker_submit(job, &ran[i]) == 0);
	worker_stop(); /* runs what is queued first */
	CHECK(ran[1] == 1 && ran[2] == 2 && ran[3] == 3);
	CHECK(!in_caller);
	/* stopped: refused again */
	CHECK(worker_submit(job, &ran[0]) != 0);
	CHECK(ran[0] == 0);
}
