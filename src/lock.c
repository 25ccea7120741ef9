/* lock.c - the core's lock; error-checking where the build asks for checks. */
#include "lock.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define LOCK_CHECKED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOCK_CHECKED 1
#endif
#endif

#ifdef LOCK_CHECKED
static pthread_mutex_t lock = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
#else
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
#endif

static void check(int rc, const char *what)
{
	if (rc) {
		log_error("core lock: %s: %s", what, strerror(rc));
		abort();
	}
}

void core_lock(void)
{
	check(pthread_mutex_lock(&lock), "taken twice by one thread");
}

void core_unlock(void)
{
	check(pthread_mutex_unlock(&lock), "released by a thread not holding it");
}

int core_lock_checked(void)
{
#ifdef LOCK_CHECKED
	return 1;
#else
	return 0;
#endif
}
