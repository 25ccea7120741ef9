/* index.c - the index on disk: queued writes, and loading at start. */
#include "index.h"
#include "cache.h"
#include "log.h"
#include "objects.h"
#include "worker.h"

#include <cjson/cJSON.h>
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

void index_flush(void)
{
	struct pending_entry *list, *e;

	pthread_mutex_lock(&queue_lock);
	list = queue;
	queue = NULL;
	queue_tail = &queue;
	writer_queued = 0;
	pthread_mutex_unlock(&queue_lock);
	while ((e = list)) {
		list = e->next;
		cache_put_entry(e->kind, e->name, e->text, strlen(e->text));
		free(e->text);
		free(e);
	}
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
	cJSON_AddStringToObject(doc, "latest", q->latest);
	cJSON_AddNumberToObject(doc, "latest_checked", (double)q->latest_checked);
	if (q->error)
		cJSON_AddStringToObject(doc, "error", q->error);
	put_doc("queries", q->obj.id, doc);
}

/* ---- loading -------------------------------------------------------------- */

static const char *json_string(const cJSON *doc, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(doc, name);

	return cJSON_IsString(item) ? item->valuestring : NULL;
}

static void copy_id(char *out, size_t outlen, const char *id, int (*valid)(const char *))
{
	snprintf(out, outlen, "%s", id && valid(id) ? id : "");
}

/* An execution with the results the cache holds of it. */
static struct execution *execution_for(const char *eid)
{
	struct cached_files files;
	struct execution *ex;

	objects_probe(eid, &files);
	core_lock();
	ex = objects_execution_new_locked(eid, &files);
	core_unlock();
	return ex;
}

static void load_execution(const char *eid, void *data)
{
	char *text = cache_get_entry("executions", eid);
	cJSON *doc = text ? cJSON_Parse(text) : NULL;
	struct execution *ex;
	const char *qid = json_string(doc, "query_id");
	const cJSON *ended;

	(void)data;
	if (doc && tree_valid_eid(eid) && qid && tree_valid_qid(qid) && (ex = execution_for(eid))) {
		core_lock();
		ex->known = 1;
		snprintf(ex->query_id, sizeof(ex->query_id), "%s", qid);
		ex->state = exec_state_from_word(json_string(doc, "state"));
		copy_id(ex->result_id, sizeof(ex->result_id), json_string(doc, "result_id"),
			tree_valid_eid);
		core_set_string(&ex->error, json_string(doc, "error"));
		core_set_string(&ex->document, json_string(doc, "status"));
		ended = cJSON_GetObjectItemCaseSensitive(doc, "ended_at");
		if (cJSON_IsNumber(ended) && ended->valuedouble > 0 && ended->valuedouble < 1e15)
			ex->ended_at = (time_t)ended->valuedouble;
		core_unlock();
	} else {
		log_info("ignoring unreadable index entry executions/%s", eid);
	}
	cJSON_Delete(doc);
	free(text);
}

static void load_query(const char *qid, void *data)
{
	char *text = cache_get_entry("queries", qid);
	cJSON *doc = text ? cJSON_Parse(text) : NULL;
	const cJSON *checked = cJSON_GetObjectItemCaseSensitive(doc, "latest_checked");
	struct query *q = NULL;
	char latest[72] = "";

	(void)data;
	if (doc && tree_valid_qid(qid)) {
		core_lock();
		q = objects_query_locked(qid, 1);
		if (q) {
			q->listed = 1;
			copy_id(q->last, sizeof(q->last), json_string(doc, "last"), tree_valid_eid);
			copy_id(q->latest, sizeof(q->latest), json_string(doc, "latest"), tree_valid_eid);
			q->latest_checked = cJSON_IsNumber(checked) ? (time_t)checked->valuedouble : 0;
			core_set_string(&q->error, json_string(doc, "error"));
			memcpy(latest, q->latest, sizeof(latest));
		}
		core_unlock();
	}
	if (!q)
		log_info("ignoring unreadable index entry queries/%s", qid);
	/* latest.* opens it without asking the API while it is fresh: its
	 * cached results must be known before (the open reads no disk) */
	else if (latest[0])
		execution_for(latest);
	cJSON_Delete(doc);
	free(text);
}

void index_load(void)
{
	cache_list_entries("executions", load_execution, NULL);
	cache_list_entries("queries", load_query, NULL);
}
