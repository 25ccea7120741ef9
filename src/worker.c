/* worker.c - a thread and a queue of jobs. */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct job {
	void (*fn)(void *data);
	void *data;
	struct job *next;
};

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *head, **tail;
	int running;
	int stop;
} worker = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
	    .tail = &worker.head};

static void *worker_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&worker.lock);
	for (;;) {
		struct job *job = worker.head;

		if (!job) {
			if (worker.stop)
				break;
			pthread_cond_wait(&worker.wake, &worker.lock);
			continue;
		}
		worker.head = job->next;
		if (!worker.head)
			worker.tail = &worker.head;
		pthread_mutex_unlock(&worker.lock);
		job->fn(job->data);
		free(job);
		pthread_mutex_lock(&worker.lock);
	}
	pthread_mutex_unlock(&worker.lock);
	return NULL;
}

int worker_start(void)
{
	int rc = pthread_create(&worker.thread, NULL, worker_main, NULL);

	if (rc)
		return -rc;
	worker.running = 1;
	return 0;
}

void worker_stop(void)
{
	if (!worker.running)
		return;
	pthread_mutex_lock(&worker.lock);
	worker.stop = 1;
	pthread_cond_signal(&worker.wake);
	pthread_mutex_unlock(&worker.lock);
	pthread_join(worker.thread, NULL);
	worker.running = 0;
}

int worker_submit(void (*fn)(void *data), void *data)
{
	struct job *job = malloc(sizeof(*job));

	if (!job)
		return -ENOMEM;
	pthread_mutex_lock(&worker.lock);
	if (!worker.running || worker.stop) {
		pthread_mutex_unlock(&worker.lock);
		free(job);
		return -ESRCH;
	}
	job->fn = fn;
	job->data = data;
	job->next = NULL;
	*worker.tail = job;
	worker.tail = &job->next;
	pthread_cond_signal(&worker.wake);
	pthread_mutex_unlock(&worker.lock);
	return 0;
}
