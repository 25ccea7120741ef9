/* apicall.c - one API call and its outcome. */
#include "apicall.h"
#include "core.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct http_request *apicall_new(struct api_request *api, enum api_call call, const char *what_fmt, ...)
{
	struct http_request *req = http_request_new(api->method, api->url, api->body);
	va_list ap;

	if (req) {
		req->starts_run = api->starts_run;
		req->call = (int)call;
		va_start(ap, what_fmt);
		vsnprintf(req->what, sizeof(req->what), what_fmt, ap);
		va_end(ap);
	}
	api_request_free(api);
	return req;
}

int apicall_outcome(struct http_request *req, struct api_response *resp, struct api_error *err)
{
	*resp = (struct api_response){req->status, req->headers.data, req->response.data,
				      req->response.len};
	memset(err, 0, sizeof(*err));
	if (req->aborted)
		return api_fail(err, req->abort_errno, req->status, "%s", strerror(req->abort_errno));
	if (req->shutdown)
		return api_fail(err, ENOTCONN, 0, "%s", req->error);
	if (req->transport_failed)
		return api_fail(err, EIO, 0, "API unreachable: %s", req->error);
	if (req->status >= 200 && req->status < 300)
		return 0;
	core_config.backend->ops->error_parse(core_config.backend, (enum api_call)req->call, resp, err);
	return -err->err;
}

void apicall_log_failure(const struct http_request *req, const struct api_error *err)
{
	char status[32] = "";

	if (req->shutdown)
		return; /* not a fault: the mount is going away */
	if (err->http_status)
		snprintf(status, sizeof(status), "HTTP %ld: ", err->http_status);
	log_error("%s: %s %s: %s%s%s", req->what, req->method, req->url, status, err->message,
		  err->err == EACCES && (err->http_status == 401 || err->http_status == 403 ||
					  err->http_status == 404)
			  ? " (the API key is missing, rejected or lacks access)" : "");
}
