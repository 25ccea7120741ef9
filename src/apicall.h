/* apicall.h - one API call: the HTTP request a backend asked for, labelled
 * with the path in the mount it serves, and its outcome as an api_error with
 * the one log line a failure gets.
 */
#ifndef EXECFS_APICALL_H
#define EXECFS_APICALL_H

#include "backend.h"
#include "http.h"

/* An HTTP request for api (which it frees); what names the path it serves
 * ("executions/<eid>/status"), for log lines. NULL when out of memory. */
struct http_request *apicall_new(struct api_request *api, enum api_call call, const char *what_fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The outcome of a finished request: resp is the response as received, and
 * the return is 0 for a 2xx, else -errno with err filled (transport failure,
 * abort, shutdown, or the backend's reading of the error reply). */
int apicall_outcome(struct http_request *req, struct api_response *resp, struct api_error *err);

/* Logs a failed call once: the path it served, the request, the HTTP status
 * and the API's own message. URLs never hold the key; headers are never
 * logged. Nothing when the mount is going away. */
void apicall_log_failure(const struct http_request *req, const struct api_error *err);

#endif
