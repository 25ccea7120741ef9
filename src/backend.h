/* backend.h - what an API family must provide: requests to make, and the
 * meaning of the replies. A backend never does I/O; the engine moves bytes.
 * Every function here can be driven from strings in a unit test.
 */
#ifndef EXECFS_BACKEND_H
#define EXECFS_BACKEND_H

#include <stddef.h>
#include <time.h>

#include "buffer.h"
#include "jscan.h"

struct cJSON;

enum exec_state {
	EXEC_UNKNOWN = 0, /* never asked, or the API said something we do not know */
	EXEC_PENDING,
	EXEC_RUNNING,
	EXEC_SUCCESS,
	EXEC_PARTIAL,
	EXEC_FAILURE,
	EXEC_CANCELLED,
	EXEC_EXPIRED,
};

enum result_format {
	FORMAT_CSV = 0,
	FORMAT_JSON,
	FORMAT_NDJSON,	/* one row object a line, from the JSON result */
	FORMAT_COUNT
};

/* The word of the `status` file for a state ("pending", ...). */
const char *exec_state_word(enum exec_state state);

/* Parses a word back (for the persisted index). EXEC_UNKNOWN if unknown. */
enum exec_state exec_state_from_word(const char *word);

/* Whether the run has ended: success, partial, failure, cancelled, expired. */
int exec_state_is_terminal(enum exec_state state);

/* The file extension of a format: "csv", "json", "ndjson". */
const char *result_format_ext(enum result_format format);

/* Appends each element of a JSON array span to out, as its own line, bytes as
 * the API sent them (NDJSON), except that line breaks between tokens become
 * spaces. Returns 0, -EINVAL (not an array, or broken), -ENOMEM. */
int result_rows_ndjson(struct jspan rows, struct buffer *out);

/* An error as the API or the transport gave it, with the errno it maps to. */
struct api_error {
	int err;		/* a positive errno, 0 for none */
	long http_status;	/* 0 when no response came */
	char message[512];	/* the API's own words where it gave some */
};

/* Fills err and returns -errno, for the common "return api_fail(...)". */
int api_fail(struct api_error *err, int errnum, long http_status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The errno an HTTP error status means before a backend reads the body:
 * 400 EINVAL, 401/403 EACCES, 402 EDQUOT, 404 ENOENT, 429 EAGAIN, else EIO. */
int api_status_errno(long status);

/* Which call a request is, for reading its errors: the same HTTP status can
 * mean different things on different routes (redash answers 500 for a job
 * it does not know). */
enum api_call {
	CALL_EXECUTE_PREPARE,
	CALL_EXECUTE,
	CALL_STATUS,
	CALL_CANCEL,
	CALL_LATEST,
	CALL_RESULT,
};

/* A request a backend wants made. url and body are malloc'd; the caller
 * frees them with api_request_free(). */
struct api_request {
	const char *method;	/* "GET", "POST", "DELETE" */
	char *url;
	char *body;		/* JSON, or NULL */
	int starts_run;		/* 1 when sending it twice could start two paid runs */
};

void api_request_free(struct api_request *req);

/* A malloc'd URL from a format; NULL when out of memory. */
char *api_url(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Fills a request with no body; takes url (NULL: -ENOMEM). */
int api_request_make(struct api_request *req, const char *method, char *url);

/* A response as received. headers holds the raw header lines of the final
 * response; body is NUL-terminated. */
struct api_response {
	long status;
	const char *headers;
	const char *body;
	size_t len;
};

/* Copies the value of header name (case-insensitive) into out. Returns 1
 * found, 0 absent. */
int api_response_header(const struct api_response *resp, const char *name, char *out, size_t outlen);

/* Whether the response claims JSON in its Content-Type. A response with no
 * Content-Type counts as JSON if its body starts like JSON. */
int api_response_is_json(const struct api_response *resp);

/* Whether the response is an HTML page (a proxy's, or a login page). */
int api_response_is_html(const struct api_response *resp);

/* The reply as a JSON object, or NULL with EIO in err (HTML, not JSON,
 * malformed). */
struct cJSON *api_json_reply(const struct api_response *resp, struct api_error *err);

/* Copies member name, a non-empty string or a whole number, into out.
 * Returns 1 when found. */
int api_json_id(const struct cJSON *doc, const char *name, char *out, size_t outlen);

/* A count from a JSON number: whole, in [0, 2^53] (exact in a double), else -1. */
long long api_json_count(const struct cJSON *item);

/* What a status request (or an execute that finished at once) tells. */
struct exec_info {
	enum exec_state state;
	char execution_id[72];
	char query_id[72];
	char result_id[72];	/* where results live, if not under execution_id */
	char *error_message;	/* malloc'd, NULL if none */
	char *document;		/* the status document as received, malloc'd */
	time_t ended_at;	/* 0 when unknown */
};

void exec_info_free(struct exec_info *info);

struct result_decoder;

/* Turns the pages of one result, as they arrive, into the bytes of the file. */
struct result_decoder_ops {
	/* A page (or a new attempt at it) starts. */
	void (*page_begin)(struct result_decoder *d);
	/* Optional: the status and headers of the current page, before its
	 * first body byte (resp->body is empty). An error fails the download
	 * before any byte of a wrong body reaches a reader. */
	int (*page_headers)(struct result_decoder *d, const struct api_response *resp,
			    struct api_error *err);
	/* Optional: the next page's URL (malloc'd) when the current page's
	 * headers already tell it, NULL otherwise. The engine then asks for
	 * the next page while this one streams; page_end still decides. */
	char *(*next_from_headers)(struct result_decoder *d, const struct api_response *resp);
	/* Body bytes of the current page; output goes to out. */
	int (*page_data)(struct result_decoder *d, const char *data, size_t len,
			 struct buffer *out, struct api_error *err);
	/* The page ended with a 2xx response. Sets *next_url (malloc'd) when
	 * another page follows, NULL otherwise. */
	int (*page_end)(struct result_decoder *d, const struct api_response *resp,
			struct buffer *out, char **next_url, struct api_error *err);
	/* No page follows: the last bytes of the file. */
	int (*finish)(struct result_decoder *d, struct buffer *out, struct api_error *err);
	void (*free)(struct result_decoder *d);
};

struct result_decoder {
	const struct result_decoder_ops *ops;
	int page;		/* pages ended so far */
	long long expect_rows;	/* rows the status says the result holds, -1 unknown */
};

struct backend;

struct backend_ops {
	const char *name;		/* "dune" */
	const char *key_env;		/* the backend's own key variable */
	const char *default_url;	/* for a SOURCE without URL, or NULL */
	const char *default_path;	/* added to a URL that has no path ("/api/v1") */

	/* The header line carrying the key ("X-Dune-API-Key: ..."), malloc'd. */
	char *(*auth_header)(const char *key);

	/* Optional: a request whose reply execute_request needs (redash: the
	 * query's parameter definitions, to fill in defaults and types). */
	int (*execute_prepare)(const struct backend *b, const char *qid, struct api_request *req);
	/* execute: params is a JSON object or NULL for the defaults; prepared
	 * is the reply to execute_prepare, or NULL. */
	int (*execute_request)(const struct backend *b, const char *qid, const struct cJSON *params,
			       const struct api_response *prepared, struct api_request *req,
			       struct api_error *err);
	/* Gives the new run's id in info->execution_id, and its state when the
	 * reply tells it. */
	int (*execute_parse)(const struct backend *b, const struct api_response *resp,
			     struct exec_info *info, struct api_error *err);

	/* Optional: whether an id of the right characters can name a run of
	 * this API at all (redash: "result-" + a result id in its canonical
	 * form); one that cannot is ENOENT with no request. */
	int (*eid_valid)(const char *eid);

	/* Optional: the rows a finished run's status document (as received)
	 * says its result holds, -1 when it does not say. */
	long long (*expected_rows)(const char *status_document);

	/* Optional: fills info and returns 1 when the id alone tells the state
	 * (redash: a result id names a finished result), so nothing is asked. */
	int (*status_local)(const struct backend *b, const char *eid, struct exec_info *info);
	int (*status_request)(const struct backend *b, const char *eid, struct api_request *req);
	int (*status_parse)(const struct backend *b, const struct api_response *resp,
			    struct exec_info *info, struct api_error *err);

	int (*cancel_request)(const struct backend *b, const char *eid, struct api_request *req);
	int (*cancel_parse)(const struct backend *b, const struct api_response *resp,
			    struct api_error *err);

	/* Which run holds the query's latest result (info->execution_id). Cheap:
	 * never the whole result. */
	int (*latest_request)(const struct backend *b, const char *qid, struct api_request *req);
	int (*latest_parse)(const struct backend *b, const struct api_response *resp,
			    struct exec_info *info, struct api_error *err);

	/* The first page of a run's result. */
	int (*result_request)(const struct backend *b, const struct exec_info *info,
			      enum result_format format, struct api_request *req);
	struct result_decoder *(*decoder_new)(const struct backend *b, enum result_format format);

	/* Any non-2xx reply to a call: the errno and the API's message. */
	void (*error_parse)(const struct backend *b, enum api_call call, const struct api_response *resp,
			    struct api_error *err);
};

struct backend {
	const struct backend_ops *ops;
	char base_url[512];	/* no trailing slash */
	char origin[512];	/* scheme://host[:port], for checking next-page links */
	char performance[16];	/* dune's engine size, or empty */
};

/* Sets up a backend from a SOURCE ("dune", "dune:URL", "redash:URL").
 * Returns 0 or -EINVAL with a message in err. */
int backend_init(struct backend *b, const char *source, struct api_error *err);

/* Whether url points at the backend's own origin: a key is never sent
 * anywhere else. */
int backend_same_origin(const struct backend *b, const char *url);

/* Whether next may follow current as the next page of one result: on the
 * SOURCE's origin and the same path, only the query (offset, limit) differs.
 * Anything else would join another result's rows, or send the key away. */
int backend_next_page_ok(const struct backend *b, const char *current, const char *next);

extern const struct backend_ops dune_backend_ops;
extern const struct backend_ops redash_backend_ops;

#endif
