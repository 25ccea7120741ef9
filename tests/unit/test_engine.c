/* test_engine.c - the core without a mount: status polling and result
 * states, driven through engine.h with a stub HTTP layer, a stub worker and
 * a fake clock (stub.h). */
#include "test.h"
#include "stub.h"

#include "cache.h"
#include "engine.h"
#include "index.h"
#include "objects.h"
#include "poll.h"
#include "result.h"
#include "sweep.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int test_failures;
int test_checks;

static struct backend backend;
static char cache_dir[64];

#define RUNNING "{\"execution_id\": \"%s\", \"query_id\": 7, \"is_execution_finished\": false, " \
		"\"state\": \"QUERY_STATE_EXECUTING\"}"
#define COMPLETED "{\"execution_id\": \"%s\", \"query_id\": 7, \"is_execution_finished\": true, " \
		  "\"state\": \"QUERY_STATE_COMPLETED\", \"result_metadata\": {\"total_row_count\": 1}}"
#define JSON_HEADERS "Content-Type: application/json\r\n"
#define CSV_HEADERS "Content-Type: text/csv\r\n"
#define CSV_BODY "n,name\n1,a\n"

static int forgotten;		/* names the engine asked the kernel to forget */
static int forgotten_777777;	/* the name "777777" was among them */

static int forget_blocks;	/* the kernel's side hangs (a parked lookup holds the directory) */
static pthread_mutex_t forget_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t forget_cond = PTHREAD_COND_INITIALIZER;
static int forgotten_random, forgotten_late; /* names of random query ids; named after another */

static void forget_name(fuse_ino_t parent, const char *name)
{
	(void)parent;
	pthread_mutex_lock(&forget_mutex);
	while (forget_blocks)
		pthread_cond_wait(&forget_cond, &forget_mutex);
	pthread_mutex_unlock(&forget_mutex);
	if (strncmp(name, "1000", 4) == 0) {
		forgotten_late |= forgotten != forgotten_random;
		forgotten_random++;
	}
	forgotten++;
	forgotten_777777 |= strcmp(name, "777777") == 0;
}

static void start(unsigned long long cache_size)
{
	struct engine_config config = {.max_age = 300, .cache_size = cache_size,
				       .forget_name = forget_name};
	struct api_error err;

	snprintf(cache_dir, sizeof(cache_dir), "/tmp/execfs-unit-XXXXXX");
	if (!mkdtemp(cache_dir) || cache_open(cache_dir) ||
	    backend_init(&backend, "dune:http://127.0.0.1:9", &err)) {
		fprintf(stderr, "cannot set up the engine\n");
		exit(1);
	}
	config.backend = &backend;
	engine_init(&config);
}

static void stop(void)
{
	char cmd[128];

	engine_shutdown();
	cache_close();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", cache_dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", cache_dir);
}

static void answer_status(const char *eid, const char *fmt)
{
	char url[96], body[512];

	snprintf(url, sizeof(url), "/execution/%s/status", eid);
	snprintf(body, sizeof(body), fmt, eid);
	CHECK(stub_answer(url, 200, JSON_HEADERS, body) == 0);
}

/* executions/<eid>, looked up: the API says it is running. */
static fuse_ino_t lookup_execution(const char *eid, const char *status)
{
	struct fuse_req *req = stub_req();
	struct fuse_entry_param e;
	fuse_ino_t ino;

	CHECK(engine_lookup(req, INO_EXECUTIONS, eid, &e) == ENGINE_PARKED);
	stub_run_due();
	CHECK(stub_pending() == 1);
	answer_status(eid, status);
	CHECK(req->answered == 1 && req->err == 0);
	ino = req->entry.ino;
	stub_req_free(req);
	return ino;
}

/* The inode of path ("stream/results.csv") under dir. */
static fuse_ino_t walk(fuse_ino_t dir, const char *path)
{
	struct fuse_entry_param e = {0};
	struct fuse_req *req = stub_req();
	char copy[64], *save = NULL;

	snprintf(copy, sizeof(copy), "%s", path);
	for (char *name = strtok_r(copy, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
		CHECK(engine_lookup(req, dir, name, &e) == 0);
		dir = e.ino;
	}
	stub_req_free(req);
	return dir;
}

static struct handle *open_file(fuse_ino_t dir, const char *name, struct fuse_file_info *fi)
{
	struct fuse_req *req = stub_req();
	int rc;

	memset(fi, 0, sizeof(*fi));
	rc = engine_open(req, walk(dir, name), fi);
	CHECK(rc == 0);
	stub_req_free(req);
	return rc == 0 ? (struct handle *)(uintptr_t)fi->fh : NULL;
}

static struct execution *execution(const char *eid)
{
	struct execution *ex;

	core_lock();
	ex = objects_execution_locked(eid);
	core_unlock();
	return ex;
}

static enum poll_state poll_state(const char *eid)
{
	enum poll_state s;

	core_lock();
	s = objects_execution_locked(eid)->poll;
	core_unlock();
	return s;
}

static struct fuse_req *read_at(struct handle *h, off_t off)
{
	struct fuse_req *req = stub_req();
	char *data;
	size_t len;

	CHECK(engine_read(req, h, 4096, off, &data, &len) == ENGINE_PARKED);
	return req;
}

/* Five readers of one running execution: one status request at a time,
 * backing off 0.5, 1, 2, 3, 3 s; then one download for all of them. */
static void test_one_poll_chain(void)
{
	static const long long backoff[] = {500, 1000, 2000, 3000, 3000};
	struct fuse_file_info fi;
	fuse_ino_t dir = lookup_execution("E1", RUNNING);
	struct handle *h = open_file(dir, "stream/results.csv", &fi);
	struct fuse_req *readers[5];
	struct result *r = &execution("E1")->results[FORMAT_CSV];
	char path[128];
	struct stat st;

	CHECK(fi.direct_io == 1); /* not whole yet */
	CHECK(poll_state("E1") == POLL_IDLE); /* nobody waited when the lookup ended */
	for (int i = 0; i < 5; i++)
		readers[i] = read_at(h, 0);
	CHECK(poll_state("E1") == POLL_SCHEDULED);
	stub_reset_count();
	stub_run_due();
	CHECK(stub_pending() == 1 && stub_submitted() == 1);
	CHECK(poll_state("E1") == POLL_INFLIGHT);
	for (size_t i = 0; i < sizeof(backoff) / sizeof(backoff[0]); i++) {
		answer_status("E1", RUNNING);
		CHECK(poll_state("E1") == POLL_SCHEDULED);
		CHECK(stub_next_timer() - stub_now() == backoff[i]);
		stub_advance(backoff[i] - 1);
		CHECK(stub_pending() == 0); /* not a moment early */
		stub_advance(1);
		CHECK(stub_pending() == 1);
	}
	CHECK(stub_submitted() == 6);
	for (int i = 0; i < 5; i++)
		CHECK(readers[i]->answered == 0);

	answer_status("E1", COMPLETED);
	CHECK(r->state == RESULT_STREAMING);
	CHECK(poll_state("E1") == POLL_IDLE);
	stub_run_due(); /* the cache file is made on the engine thread */
	CHECK(stub_pending() == 1 && strstr(stub_request(0)->url, "/execution/E1/results/csv"));
	CHECK(stub_answer("/results/csv", 200, CSV_HEADERS, CSV_BODY) == 0);
	for (int i = 0; i < 5; i++) {
		CHECK(readers[i]->answered == 1 && readers[i]->err == 0);
		CHECK_STR(readers[i]->data, CSV_BODY);
		stub_req_free(readers[i]);
	}
	CHECK(r->state == RESULT_COMMITTING); /* every byte read, the fsync to come */
	stub_run_jobs(); /* the commit, on the worker */
	CHECK(r->state == RESULT_COMPLETE);
	snprintf(path, sizeof(path), "%s/results/E1.csv", cache_dir);
	CHECK(stat(path, &st) == 0 && st.st_size == (off_t)strlen(CSV_BODY));

	/* EOF at once, and no request more, however long one waits */
	readers[0] = stub_req();
	{
		char *data;
		size_t len;

		CHECK(engine_read(readers[0], h, 4096, (off_t)strlen(CSV_BODY), &data, &len) == ENGINE_PARKED);
	}
	CHECK(readers[0]->answered == 1 && readers[0]->len == 0);
	stub_req_free(readers[0]);
	stub_advance(60000);
	CHECK(stub_submitted() == 7); /* six polls and one page */
	engine_release(h);
}

/* A status that stays broken ends a read after three failed polls in a row. */
static void test_failed_polls(void)
{
	struct fuse_file_info fi;
	fuse_ino_t dir = lookup_execution("E2", RUNNING);
	struct handle *h = open_file(dir, "stream/results.json", &fi);
	struct fuse_req *reader = read_at(h, 0);

	for (int i = 1; i <= 3; i++) {
		stub_advance(3000);
		CHECK(stub_pending() == 1);
		CHECK(stub_fail("/execution/E2/status") == 0);
		CHECK(execution("E2")->poll_failures == i);
		CHECK(reader->answered == (i == 3));
	}
	CHECK(reader->err == EIO);
	CHECK(poll_state("E2") == POLL_IDLE); /* nobody waits any more */
	stub_advance(60000);
	CHECK(stub_pending() == 0);
	stub_req_free(reader);
	engine_release(h);
}

/* Ctrl-C ends one parked read; polling goes on for the others. */
static void test_interrupt(void)
{
	struct fuse_file_info fi;
	fuse_ino_t dir = lookup_execution("E3", RUNNING);
	struct handle *h = open_file(dir, "stream/results.csv", &fi);
	struct fuse_req *a = read_at(h, 0), *b = read_at(h, 0);

	CHECK(a->interrupt != NULL);
	a->interrupt(a, a->interrupt_data);
	CHECK(a->answered == 1 && a->err == EINTR);
	CHECK(b->answered == 0);
	CHECK(execution("E3")->results[FORMAT_CSV].waiters == 1);
	stub_run_due();
	answer_status("E3", COMPLETED);
	stub_run_due();
	CHECK(stub_answer("/execution/E3/results/csv", 200, CSV_HEADERS, CSV_BODY) == 0);
	CHECK(b->answered == 1 && b->len == strlen(CSV_BODY));
	CHECK(a->answered == 1);
	stub_run_jobs();
	stub_req_free(a);
	stub_req_free(b);
	engine_release(h);
}

/* A download that fails: readers get the error, the error file says why,
 * and the next open tries again. */
static void test_failed_download(void)
{
	struct fuse_file_info fi;
	fuse_ino_t dir = lookup_execution("E4", COMPLETED);
	struct handle *h = open_file(dir, "stream/results.csv", &fi), *again, *error;
	struct result *r = &execution("E4")->results[FORMAT_CSV];
	struct fuse_req *reader = read_at(h, 0);
	char *text;
	size_t len;

	CHECK(r->state == RESULT_STREAMING);
	stub_run_due();
	CHECK(stub_answer("/execution/E4/results/csv", 500, JSON_HEADERS,
			  "{\"error\": \"the export broke\"}") == 0);
	CHECK(reader->answered == 1 && reader->err == EIO);
	CHECK(r->state == RESULT_FAILED);
	error = open_file(dir, "error", &fi);
	CHECK(engine_read(NULL, error, 4096, 0, &text, &len) == 0);
	CHECK(text && strstr(text, "the export broke"));
	free(text);
	engine_release(error);
	engine_release(h);
	CHECK(r->state == RESULT_FAILED && r->fd < 0 && r->size == 0);
	again = open_file(dir, "stream/results.csv", &fi);
	CHECK(r->state == RESULT_ABSENT && r->error == 0);
	engine_release(again);
	stub_req_free(reader);
}

/* Another daemon on the cache directory holding eid's download: its lock
 * file, held, naming its .part file, which holds `bytes`. Returns the lock's
 * descriptor (closing it is that daemon's end). */
static int other_daemon_downloads(const char *eid, const char *bytes)
{
	struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	char path[160], part[96];
	int fd, pfd;

	snprintf(part, sizeof(part), "results/%s.csv.999-1.part", eid);
	snprintf(path, sizeof(path), "%s/results/%s.csv.lock", cache_dir, eid);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	CHECK(fd >= 0 && fcntl(fd, F_OFD_SETLK, &lock) == 0);
	CHECK(write(fd, part, strlen(part)) == (ssize_t)strlen(part));
	snprintf(path, sizeof(path), "%s/%s", cache_dir, part);
	pfd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	CHECK(pfd >= 0 && write(pfd, bytes, strlen(bytes)) == (ssize_t)strlen(bytes));
	close(pfd);
	return fd;
}

static void append_part(const char *eid, const char *bytes)
{
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/results/%s.csv.999-1.part", cache_dir, eid);
	fd = open(path, O_WRONLY | O_APPEND);
	CHECK(fd >= 0 && write(fd, bytes, strlen(bytes)) == (ssize_t)strlen(bytes));
	close(fd);
}

/* Another daemon downloads the result: this one reads its file as it grows,
 * sends no request for it, and has it complete once that daemon commits. */
static void test_follow_another_daemon(void)
{
	struct fuse_file_info fi;
	fuse_ino_t dir = lookup_execution("G7", COMPLETED);
	int lock = other_daemon_downloads("G7", "n,name\n");
	struct handle *h = open_file(dir, "stream/results.csv", &fi);
	struct result *r = &execution("G7")->results[FORMAT_CSV];
	struct fuse_req *reader = read_at(h, 0);
	char from[160], to[160];
	int before = stub_submitted();

	stub_run_due(); /* the claim: another daemon has it */
	CHECK(reader->answered == 1 && reader->len == 7);
	CHECK_STR(reader->data, "n,name\n");
	stub_req_free(reader);
	reader = read_at(h, 7);
	append_part("G7", "1,a\n");
	stub_advance(20);
	CHECK(reader->answered == 1);
	CHECK_STR(reader->data, "1,a\n");
	stub_req_free(reader);
	CHECK(r->state == RESULT_STREAMING);
	/* the other daemon commits: rename, then its lock file goes */
	snprintf(from, sizeof(from), "%s/results/G7.csv.999-1.part", cache_dir);
	snprintf(to, sizeof(to), "%s/results/G7.csv", cache_dir);
	CHECK(rename(from, to) == 0);
	snprintf(from, sizeof(from), "%s/results/G7.csv.lock", cache_dir);
	CHECK(unlink(from) == 0);
	close(lock);
	stub_advance(20);
	CHECK(r->state == RESULT_COMPLETE && r->size == (off_t)strlen(CSV_BODY));
	reader = read_at(h, (off_t)strlen(CSV_BODY));
	CHECK(reader->answered == 1 && reader->len == 0);
	stub_req_free(reader);
	CHECK(stub_submitted() == before); /* not one request for the result */
	engine_release(h);
}

/* The daemon downloading dies: this one claims the download, removes the
 * dead one's file, downloads, and its reader gets every byte. */
static void test_follow_owner_dies(void)
{
	struct fuse_file_info fi;
	fuse_ino_t dir = lookup_execution("G8", COMPLETED);
	int lock = other_daemon_downloads("G8", "n,na");
	struct handle *h = open_file(dir, "stream/results.csv", &fi);
	struct result *r = &execution("G8")->results[FORMAT_CSV];
	struct fuse_req *reader = read_at(h, 0);
	char path[160];
	struct stat st;

	stub_run_due();
	CHECK(reader->answered == 1 && reader->len == 4);
	stub_req_free(reader);
	reader = read_at(h, 4);
	close(lock); /* kill -9: its lock goes, its files stay */
	stub_advance(250);
	stub_run_due();
	snprintf(path, sizeof(path), "%s/results/G8.csv.999-1.part", cache_dir);
	CHECK(stat(path, &st) != 0); /* the dead daemon's bytes are gone */
	CHECK(stub_pending() == 1);
	CHECK(stub_answer("/execution/G8/results/csv", 200, CSV_HEADERS, CSV_BODY) == 0);
	CHECK(reader->answered == 1);
	CHECK_STR(reader->data, CSV_BODY + 4);
	stub_req_free(reader);
	stub_run_jobs();
	CHECK(r->state == RESULT_COMPLETE);
	snprintf(path, sizeof(path), "%s/results/G8.csv.lock", cache_dir);
	CHECK(stat(path, &st) != 0); /* released with the commit */
	engine_release(h);
}

/* Objects nobody uses leave memory: an unknown id is remembered in the
 * negative cache (a second lookup sends nothing), a run the kernel forgot
 * comes back from the index without a request, and past SWEEP_KEEP_OBJECTS
 * the kernel is asked to forget the least recently used. */
static void test_sweep(void)
{
	struct fuse_req *req = stub_req();
	struct fuse_entry_param e;
	fuse_ino_t ino;
	char qid[16];
	int before;

	CHECK(engine_lookup(req, INO_EXECUTIONS, "M1", &e) == ENGINE_PARKED);
	stub_run_due();
	CHECK(stub_answer("/execution/M1/status", 404, JSON_HEADERS,
			  "{\"error\": \"Execution not found\"}") == 0);
	CHECK(req->answered == 1 && req->err == ENOENT);
	stub_req_free(req);
	sweep_now();
	CHECK(execution("M1") == NULL);
	req = stub_req();
	before = stub_submitted();
	CHECK(engine_lookup(req, INO_EXECUTIONS, "M1", &e) == -ENOENT);
	CHECK(stub_submitted() == before && execution("M1") == NULL);
	stub_req_free(req);

	/* a finished run the kernel forgot is kept, while there is room */
	ino = lookup_execution("M2", COMPLETED);
	stub_run_jobs(); /* its index entry is written */
	engine_forget(ino, 1);
	sweep_now();
	CHECK(execution("M2") != NULL);
	/* past SWEEP_KEEP_OBJECTS, the least recently used go: M2 is freed (the
	 * kernel holds nothing of it), older ones the kernel holds are named
	 * for it to forget */
	forgotten = 0;
	core_lock();
	for (int i = 0; i < SWEEP_KEEP_OBJECTS; i++) {
		struct query *q;

		snprintf(qid, sizeof(qid), "%d", 200000 + i);
		q = objects_query_locked(qid, 1);
		q->listed = 1;
		q->obj.used_ms = stub_now() + 1 + i;
	}
	core_unlock();
	sweep_now();
	sweep_wait_forgets();
	CHECK(execution("M2") == NULL);
	CHECK(forgotten > 0 && forgotten < 40);
	/* looked up again: back from the index, no request */
	req = stub_req();
	CHECK(engine_lookup(req, INO_EXECUTIONS, "M2", &e) == 0);
	CHECK(stub_submitted() == before + 1 && execution("M2") && execution("M2")->state == EXEC_SUCCESS);
	stub_req_free(req);

	/* names looked up and worth nothing (random query ids) are the first
	 * the kernel is asked to forget */
	forgotten = forgotten_random = forgotten_late = 0;
	for (int i = 0; i < 50; i++) {
		req = stub_req();
		snprintf(qid, sizeof(qid), "%d", 100000 + i);
		CHECK(engine_lookup(req, INO_QUERIES, qid, &e) == 0);
		stub_req_free(req);
		stub_advance(1);
	}
	sweep_now();
	sweep_wait_forgets();
	CHECK(forgotten_random == 50 && !forgotten_late);

}

/* A worthless name (a random query id) the kernel holds is handed back
 * after 10 s unused, however few objects there are. */
static void test_sweep_worthless(void)
{
	struct fuse_req *req = stub_req();
	struct fuse_entry_param e;

	CHECK(engine_lookup(req, INO_QUERIES, "777777", &e) == 0);
	stub_req_free(req);
	forgotten_777777 = 0;
	sweep_now();
	sweep_wait_forgets();
	CHECK(!forgotten_777777);
	stub_advance(10001);
	sweep_now();
	sweep_wait_forgets();
	CHECK(forgotten_777777);
}

static void *three_sweeps(void *data)
{
	char qid[16];

	(void)data;
	for (int i = 0; i < 3; i++) {
		struct fuse_req *req = stub_req();
		struct fuse_entry_param e;

		snprintf(qid, sizeof(qid), "%d", 888000 + i);
		engine_lookup(req, INO_QUERIES, qid, &e);
		stub_req_free(req);
		stub_advance(10001);
		sweep_now();
	}
	return NULL;
}

/* The kernel's side of forgetting may hang for as long as a lookup parked
 * in that directory waits for its poll, which needs the engine thread: the
 * sweep (engine thread) never waits for it. */
static void test_sweep_never_waits_for_the_kernel(void)
{
	struct timespec until;
	pthread_t t;
	int joined;

	forget_blocks = 1;
	pthread_create(&t, NULL, three_sweeps, NULL);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	joined = pthread_timedjoin_np(t, NULL, &until) == 0;
	CHECK(joined);
	pthread_mutex_lock(&forget_mutex);
	forget_blocks = 0;
	pthread_cond_broadcast(&forget_cond);
	pthread_mutex_unlock(&forget_mutex);
	if (!joined)
		pthread_join(t, NULL);
	sweep_wait_forgets();
}

/* Sets the last open of a cached file seconds ago (its atime). */
static void opened_ago(const char *name, int seconds)
{
	struct timespec times[2] = {{.tv_sec = time(NULL) - seconds}, {.tv_nsec = UTIME_OMIT}};
	char path[128];

	snprintf(path, sizeof(path), "%s/results/%s", cache_dir, name);
	CHECK(utimensat(AT_FDCWD, path, times, 0) == 0);
}

/* Over cache_size, the least recently opened complete result nobody has
 * open here is evicted, by the worker, file and all; another daemon's
 * results in the directory count, and go first when older. */
static void test_eviction(void)
{
	const char *ids[] = {"E5", "E6"};
	struct handle *h[2];
	struct fuse_file_info fi;
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/results/Z1.csv", cache_dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600); /* another daemon's, opened long ago */
	CHECK(fd >= 0 && write(fd, CSV_BODY, strlen(CSV_BODY)) == (ssize_t)strlen(CSV_BODY));
	close(fd);
	opened_ago("Z1.csv", 60);
	for (int i = 0; i < 2; i++) {
		char url[64];
		fuse_ino_t dir = lookup_execution(ids[i], COMPLETED);
		struct fuse_req *reader;

		h[i] = open_file(dir, "stream/results.csv", &fi);
		reader = read_at(h[i], 0);
		stub_run_due();
		snprintf(url, sizeof(url), "/execution/%s/results/csv", ids[i]);
		CHECK(stub_answer(url, 200, CSV_HEADERS, CSV_BODY) == 0);
		CHECK(reader->answered == 1 && reader->len == strlen(CSV_BODY));
		stub_req_free(reader);
		stub_run_jobs();
		if (i == 0) {
			snprintf(path, sizeof(path), "%s/results/Z1.csv", cache_dir);
			CHECK(access(path, F_OK) != 0); /* the oldest, though not ours */
			opened_ago("E5.csv", 10);
			engine_release(h[0]);
		}
	}
	/* E6's commit passed the cap: the trim is queued */
	core_lock();
	CHECK(results_cached_bytes_locked() == strlen(CSV_BODY));
	core_unlock();
	CHECK(execution("E5")->results[FORMAT_CSV].state == RESULT_ABSENT);
	CHECK(execution("E6")->results[FORMAT_CSV].state == RESULT_COMPLETE);
	snprintf(path, sizeof(path), "%s/results/E5.csv", cache_dir);
	CHECK(access(path, F_OK) != 0);
	snprintf(path, sizeof(path), "%s/results/E6.csv", cache_dir);
	CHECK(access(path, F_OK) == 0);
	engine_release(h[1]);
}

/* An index entry queued under the core lock when the worker cannot take
 * jobs: nothing runs in line (it used to take the lock again), and the
 * entry is written at the next flush. */
static void test_index_under_lock(void)
{
	struct query *q;
	char path[128];

	stub_worker_refuse(1);
	core_lock();
	q = objects_query_locked("42", 1);
	q->listed = 1;
	index_put_query_locked(q);
	core_unlock();
	stub_worker_refuse(0);
	snprintf(path, sizeof(path), "%s/queries/42", cache_dir);
	CHECK(access(path, F_OK) != 0);
	index_flush();
	CHECK(access(path, F_OK) == 0);
}

/* In a checked build, taking the lock twice on one thread aborts at once
 * instead of hanging for ever. */
static void test_relock_aborts(void)
{
	pid_t pid;
	int status;

	if (!core_lock_checked())
		return;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(devnull, 2);
		alarm(5);
		core_lock();
		core_lock();
		_exit(0);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

/* Opening results.* (not stream/) waits until the result is whole, then
 * the file is read through the page cache at its exact size; Ctrl-C ends
 * one such open, the download goes on for the other. */
static void test_whole_open(void)
{
	fuse_ino_t dir = lookup_execution("F7", RUNNING);
	fuse_ino_t ino = walk(dir, "results.csv");
	struct fuse_file_info fi = {0}, fi2 = {0};
	struct fuse_req *a = stub_req(), *b = stub_req(), *reader = stub_req();
	struct result *r = &execution("F7")->results[FORMAT_CSV];
	struct handle *h;
	struct stat st;
	char *data;
	size_t len;
	double timeout;

	CHECK(engine_open(a, ino, &fi) == ENGINE_PARKED);
	CHECK(engine_open(b, ino, &fi2) == ENGINE_PARKED);
	CHECK(r->waiters == 2);
	stub_run_due();
	answer_status("F7", COMPLETED);
	stub_run_due();
	CHECK(stub_pending() == 1);
	b->interrupt(b, b->interrupt_data);
	CHECK(b->answered == 1 && b->err == EINTR && r->opens == 1);
	CHECK(a->answered == 0);
	CHECK(stub_answer("/execution/F7/results/csv", 200, CSV_HEADERS, CSV_BODY) == 0);
	CHECK(a->answered == 1 && a->err == 0);
	CHECK(a->fi.direct_io == 0 && a->fi.keep_cache == 1);
	h = (struct handle *)(uintptr_t)a->fi.fh;
	CHECK(engine_getattr(ino, h, &st, &timeout) == 0 && st.st_size == (off_t)strlen(CSV_BODY));
	CHECK(engine_read(reader, h, 4096, 0, &data, &len) == ENGINE_PARKED);
	CHECK(reader->answered == 1 && reader->len == strlen(CSV_BODY));
	stub_run_jobs();
	engine_release(h);
	stub_req_free(a);
	stub_req_free(b);
	stub_req_free(reader);
}

/* A download the decoder rejects after some bytes reached an open reader:
 * a new open never gets those bytes, it waits for a new download. */
static void test_retry_after_rejected_bytes(void)
{
	struct fuse_file_info fi;
	fuse_ino_t dir = lookup_execution("E9", COMPLETED); /* one row, says the status */
	struct handle *a = open_file(dir, "stream/results.csv", &fi), *b;
	struct fuse_req *ra = read_at(a, 0), *rb;
	struct result *r = &execution("E9")->results[FORMAT_CSV];

	stub_run_due();
	CHECK(stub_answer("/execution/E9/results/csv", 200, CSV_HEADERS, CSV_BODY "2,EVIL\n") == 0);
	CHECK(ra->answered == 1); /* streamed: it had the bytes as they came */
	CHECK(r->state == RESULT_FAILED && r->opens == 1 && r->size > 0);
	b = open_file(dir, "stream/results.csv", &fi);
	CHECK(r->state == RESULT_ABSENT && r->size == 0);
	rb = read_at(b, 0);
	CHECK(rb->answered == 0); /* not the rejected bytes */
	stub_run_due();
	CHECK(stub_answer("/execution/E9/results/csv", 200, CSV_HEADERS, CSV_BODY) == 0);
	CHECK(rb->answered == 1 && rb->err == 0);
	CHECK_STR(rb->data, CSV_BODY);
	stub_run_jobs();
	engine_release(a);
	engine_release(b);
	stub_req_free(ra);
	stub_req_free(rb);
}

/* Before its run's end is known a result is dated the epoch, never the
 * mount's start: a later rsync -au or make takes it when it comes. */
static void test_mtime_before_end(void)
{
	fuse_ino_t dir = lookup_execution("E8", RUNNING);
	struct stat st;
	double timeout;

	CHECK(engine_getattr(walk(dir, "results.csv"), NULL, &st, &timeout) == 0);
	CHECK(st.st_mtime == 0 && st.st_size == 0);
}

int main(void)
{
	test_relock_aborts();
	start(10ULL << 30);
	test_one_poll_chain();
	test_failed_polls();
	test_interrupt();
	test_failed_download();
	test_index_under_lock();
	test_whole_open();
	test_mtime_before_end();
	test_retry_after_rejected_bytes();
	test_follow_another_daemon();
	test_follow_owner_dies();
	test_sweep();
	stop();
	start(2 * strlen(CSV_BODY) - 1);
	test_eviction();
	stop();
	start(10ULL << 30);
	test_sweep_worthless();
	test_sweep_never_waits_for_the_kernel();
	stop();
	printf("engine: %d checks, %d failed\n", test_checks, test_failures);
	return test_failures ? 1 : 0;
}
