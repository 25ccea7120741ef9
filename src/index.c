/* index.c - the index on disk: queued writes merged with other daemons',
 * and entries read when their objects are first looked up. */
#include "index.h"
#include "cache.h"
#include "log.h"
#include "objects.h"
#include "worker.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pending_entry {
	const char *kind;
	char name[72];
	char *text;
	struct pending_entry *next;
};

/* The queue has its own lock, never held across disk I/O: the writer takes
 * it only to take the queue, so queuing under the core lock cannot wait on
 * the disk, and a job run in line cannot take a lock its caller holds. */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pending_entry *queue, **queue_tail = &queue;
static int writer_queued; /* a write job is queued on the worker */

/* Writes one entry merged with the disk's; the kind's lock is held. */
static void write_merged(const struct pending_entry *e)
{
	char *disk = cache_get_entry(e->kind, e->name, NULL);
	char *text = index_merge(e->kind, e->text, disk);

	if (text)
		cache_put_entry(e->kind, e->name, text, strlen(text));
	else
		log_error("%s/%s: out of memory for the index entry", e->kind, e->name);
	free(text);
	free(disk);
}

void index_flush(void)
{
	struct pending_entry *list, *e;
	const char *locked = NULL;
	int lock_fd = -1;

	pthread_mutex_lock(&queue_lock);
	list = queue;
	queue = NULL;
	queue_tail = &queue;
	writer_queued = 0;
	pthread_mutex_unlock(&queue_lock);
	while ((e = list)) {
		list = e->next;
		if (locked != e->kind) {
			cache_unlock_entries(lock_fd);
			lock_fd = cache_lock_entries(e->kind);
			locked = e->kind;
		}
		write_merged(e);
		free(e->text);
		free(e);
	}
	cache_unlock_entries(lock_fd);
}

static void write_job(void *data)
{
	(void)data;
	index_flush();
}

/* Queues an entry; takes text. */
static void put(const char *kind, const char *name, char *text)
{
	struct pending_entry *e = malloc(sizeof(*e));
	int kick;

	if (!e) {
		log_error("%s/%s: out of memory for the index entry", kind, name);
		free(text);
		return;
	}
	e->kind = kind;
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->text = text;
	e->next = NULL;
	pthread_mutex_lock(&queue_lock);
	*queue_tail = e;
	queue_tail = &e->next;
	kick = !writer_queued;
	writer_queued = 1;
	pthread_mutex_unlock(&queue_lock);
	/* never run in line (see worker.h): without a worker the entries wait
	 * for the next job queued, or for index_flush() at shutdown */
	if (kick && worker_submit(write_job, NULL)) {
		pthread_mutex_lock(&queue_lock);
		writer_queued = 0;
		pthread_mutex_unlock(&queue_lock);
	}
}

static void put_doc(const char *kind, const char *name, cJSON *doc)
{
	char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;

	if (text)
		put(kind, name, text);
	cJSON_Delete(doc);
}

void index_put_execution_locked(struct execution *ex)
{
	cJSON *doc = cJSON_CreateObject();

	if (!doc)
		return;
	cJSON_AddStringToObject(doc, "query_id", ex->query_id);
	cJSON_AddStringToObject(doc, "state", exec_state_word(ex->state));
	if (ex->result_id[0])
		cJSON_AddStringToObject(doc, "result_id", ex->result_id);
	if (ex->error)
		cJSON_AddStringToObject(doc, "error", ex->error);
	if (ex->document)
		cJSON_AddStringToObject(doc, "status", ex->document);
	if (ex->ended_at)
		cJSON_AddNumberToObject(doc, "ended_at", (double)ex->ended_at);
	put_doc("executions", ex->obj.id, doc);
}

void index_put_query_locked(struct query *q)
{
	cJSON *doc = cJSON_CreateObject();

	if (!doc)
		return;
	cJSON_AddStringToObject(doc, "last", q->last);
	if (q->last_at)
		cJSON_AddNumberToObject(doc, "last_at", (double)q->last_at);
	cJSON_AddStringToObject(doc, "latest", q->latest);
	cJSON_AddNumberToObject(doc, "latest_checked", (double)q->latest_checked);
	if (q->error)
		cJSON_AddStringToObject(doc, "error", q->error);
	put_doc("queries", q->obj.id, doc);
}

/* ---- merging with the disk ----------------------------------------------- */

static const char *json_string(const cJSON *doc, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, name);

	return cJSON_IsString(item) ? item->valuestring : NULL;
}

static double json_number(const cJSON *doc, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, name);

	return cJSON_IsNumber(item) ? item->valuedouble : 0;
}

/* Sets doc's field name to a copy of from's (removed when from has none). */
static void take(cJSON *doc, const cJSON *from, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(from, name);
	cJSON *copy = item ? cJSON_Duplicate(item, 1) : NULL;

	cJSON_DeleteItemFromObjectCaseSensitive(doc, name);
	if (copy)
		cJSON_AddItemToObject(doc, name, copy);
}

/* Fields disk has and doc has not. */
static void fill_missing(cJSON *doc, const cJSON *disk, const char *except)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, disk)
		if (item->string && strcmp(item->string, except) != 0 &&
		    !cJSON_GetObjectItemCaseSensitive(doc, item->string))
			cJSON_AddItemToObject(doc, item->string, cJSON_Duplicate(item, 1));
}

static void merge_query(cJSON *doc, const cJSON *disk)
{
	/* the newest run started through any mount is `last` */
	if (json_number(disk, "last_at") > json_number(doc, "last_at") ||
	    !(json_string(doc, "last") && *json_string(doc, "last"))) {
		if (json_string(disk, "last") && *json_string(disk, "last")) {
			take(doc, disk, "last");
			take(doc, disk, "last_at");
		}
	}
	if (json_number(disk, "latest_checked") > json_number(doc, "latest_checked") ||
	    !(json_string(doc, "latest") && *json_string(doc, "latest"))) {
		if (json_string(disk, "latest") && *json_string(disk, "latest")) {
			take(doc, disk, "latest");
			take(doc, disk, "latest_checked");
		}
	}
}

static void merge_execution(cJSON *doc, const cJSON *disk)
{
	enum exec_state ours = exec_state_from_word(json_string(doc, "state"));
	enum exec_state theirs = exec_state_from_word(json_string(disk, "state"));

	/* a run's end, once known anywhere, is never forgotten */
	if (exec_state_is_terminal(theirs) && !exec_state_is_terminal(ours)) {
		take(doc, disk, "state");
		take(doc, disk, "status");
		take(doc, disk, "ended_at");
		take(doc, disk, "error");
	}
}

char *index_merge(const char *kind, const char *ours, const char *disk)
{
	cJSON *doc = cJSON_Parse(ours), *old = disk ? cJSON_Parse(disk) : NULL;
	char *text;

	if (!doc) {
		cJSON_Delete(old);
		return ours ? strdup(ours) : NULL;
	}
	if (cJSON_IsObject(old)) {
		/* a query's error is the writer's: a cleared one stays cleared */
		if (strcmp(kind, "queries") == 0) {
			merge_query(doc, old);
			fill_missing(doc, old, "error");
		} else {
			merge_execution(doc, old);
			fill_missing(doc, old, "");
		}
	}
	text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	cJSON_Delete(old);
	return text;
}

/* ---- reading -------------------------------------------------------------- */

static void copy_id(char *out, size_t outlen, const char *id, int (*valid)(const char *))
{
	snprintf(out, outlen, "%s", id && valid(id) ? id : "");
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void read_execution_files(const char *eid, struct cached_files *files)
{
	memset(files, 0, sizeof(*files));
	for (int f = 0; f < FORMAT_COUNT; f++)
		files->present[f] = cache_result_probe(eid, (enum result_format)f, &files->size[f]) == 0;
}

void index_read_execution(const char *eid, struct execution_entry *e)
{
	char *text;
	cJSON *doc;
	const char *qid;

	memset(e, 0, sizeof(*e));
	core_lock();
	e->in_table = objects_execution_locked(eid) != NULL;
	core_unlock();
	if (e->in_table)
		return; /* the table knows it: no disk read */
	read_execution_files(eid, &e->files);
	text = cache_get_entry("executions", eid, NULL);
	doc = text ? cJSON_Parse(text) : NULL;
	qid = json_string(doc, "query_id");
	if (doc && qid && tree_valid_qid(qid)) {
		e->found = 1;
		snprintf(e->query_id, sizeof(e->query_id), "%s", qid);
		e->state = exec_state_from_word(json_string(doc, "state"));
		copy_id(e->result_id, sizeof(e->result_id), json_string(doc, "result_id"),
			tree_valid_eid);
		e->error = dup_or_null(json_string(doc, "error"));
		e->document = dup_or_null(json_string(doc, "status"));
		if (json_number(doc, "ended_at") > 0 && json_number(doc, "ended_at") < 1e15)
			e->ended_at = (time_t)json_number(doc, "ended_at");
	} else if (text) {
		log_info("ignoring unreadable index entry executions/%s", eid);
	}
	cJSON_Delete(doc);
	free(text);
}

void index_execution_entry_free(struct execution_entry *e)
{
	free(e->error);
	free(e->document);
	e->error = e->document = NULL;
}

struct execution *index_execution_locked(const char *eid, struct execution_entry *e)
{
	struct execution *ex = objects_execution_locked(eid);

	if (!ex) {
		ex = objects_execution_new_locked(eid, e->in_table ? NULL : &e->files);
		if (ex && e->found) {
			ex->known = 1;
			memcpy(ex->query_id, e->query_id, sizeof(ex->query_id));
			memcpy(ex->result_id, e->result_id, sizeof(ex->result_id));
			ex->state = e->state;
			ex->error = e->error;
			ex->document = e->document;
			ex->ended_at = e->ended_at;
			e->error = e->document = NULL;
		}
	}
	index_execution_entry_free(e);
	return ex;
}

static int same_stamp(const struct cache_stamp *a, const struct cache_stamp *b)
{
	return a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

void index_read_query(const char *qid, struct query_entry *e)
{
	struct cache_stamp known = {0}, now;
	struct query *q;
	char *text;
	cJSON *doc;
	int in_table;

	memset(e, 0, sizeof(*e));
	e->latest_run.in_table = 1;
	core_lock();
	q = objects_query_locked(qid, 0);
	in_table = e->in_table = q != NULL;
	if (q)
		known = q->stamp;
	core_unlock();
	if (in_table && (cache_entry_stamp("queries", qid, &now) || same_stamp(&now, &known)))
		return; /* nothing new on disk: one stat */
	text = cache_get_entry("queries", qid, &e->stamp);
	doc = text ? cJSON_Parse(text) : NULL;
	if (cJSON_IsObject(doc)) {
		e->found = 1;
		copy_id(e->last, sizeof(e->last), json_string(doc, "last"), tree_valid_eid);
		e->last_at = (long long)json_number(doc, "last_at");
		copy_id(e->latest, sizeof(e->latest), json_string(doc, "latest"), tree_valid_eid);
		e->latest_checked = (time_t)json_number(doc, "latest_checked");
		e->error = dup_or_null(json_string(doc, "error"));
		/* latest.* opens it without asking the API while it is fresh:
		 * its cached results must be known then (an open reads no disk) */
		if (e->latest[0])
			index_read_execution(e->latest, &e->latest_run);
	} else if (text) {
		log_info("ignoring unreadable index entry queries/%s", qid);
	}
	cJSON_Delete(doc);
	free(text);
}

struct query *index_query_locked(const char *qid, struct query_entry *e, int create)
{
	struct query *q = objects_query_locked(qid, 0);
	int made = 0;

	if (!q && (create || e->found)) {
		q = objects_query_locked(qid, 1);
		made = q != NULL;
	}
	if (q && e->found) {
		q->stamp = e->stamp;
		q->listed = 1;
		if (e->last[0] && (made || e->last_at > q->last_at || !q->last[0])) {
			memcpy(q->last, e->last, sizeof(q->last));
			q->last_at = e->last_at;
		}
		if (e->latest[0] && (made || e->latest_checked > q->latest_checked || !q->latest[0])) {
			memcpy(q->latest, e->latest, sizeof(q->latest));
			q->latest_checked = e->latest_checked;
		}
		if (made && e->error) {
			q->error = e->error;
			e->error = NULL;
		}
		if (e->latest[0] && !e->latest_run.in_table)
			index_execution_locked(e->latest, &e->latest_run);
	}
	index_execution_entry_free(&e->latest_run);
	free(e->error);
	e->error = NULL;
	return q;
}

/* ---- listing -------------------------------------------------------------- */

struct names {
	char **list;
	size_t count, alloc;
};

static void add_name(const char *name, void *data)
{
	struct names *n = data;

	if (n->count == n->alloc) {
		size_t alloc = n->alloc ? 2 * n->alloc : 64;
		char **grown = realloc(n->list, alloc * sizeof(*grown));

		if (!grown)
			return;
		n->list = grown;
		n->alloc = alloc;
	}
	if ((n->list[n->count] = strdup(name)))
		n->count++;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **index_names(const char *kind, size_t *count)
{
	struct names n = {0};

	cache_list_entries(kind, add_name, &n);
	if (n.count)
		qsort(n.list, n.count, sizeof(*n.list), by_name);
	*count = n.count;
	return n.list;
}

void index_names_free(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}
