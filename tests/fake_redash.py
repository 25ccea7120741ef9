#!/usr/bin/env python3
"""A local fake of a Redash-compatible API (Redash, Nansen's query API), for
execfs's tests and demo.

Faithful to the project's notes on Redash (api/redash.md): routes, the two
shapes of an execute reply, jobs and their status numbers, the 500 for an
unknown job, results by id and latest, the CSV byte rules, parameter checks
without defaults, job de-duplication. Standard library only. It shares the
HTTP plumbing, faults, request log and control interface of fake_dune.py.

Command line:

    python3 tests/fake_redash.py [--host 127.0.0.1] [--port 0] [--key test-key]
                                 [--port-file PATH] [--scenario FILE.json]
                                 [--time-scale 1.0] [--verbose]

Prints "PORT <n>" once listening. A client's base URL is http://127.0.0.1:<n>
(routes start with /api/).

Control interface: as fake_dune.py (/_fake/log, reset, faults, executions,
queries, settings, state). Faults: as fake_dune.py (status, html, drop,
drop_after_request, cut_body, delay, stall_body, body, rewrite); a rewrite's
paths name Redash's fields ("job.status", "query_result.data.rows.0.n") and its
drop_rows takes rows off query_result.data.rows or off the CSV. Log entries also carry "body" (the request body as
text). Settings: time_scale, key, verbose, old_server (job documents without
the "result" key, as older Redash), cancel_status5 (a cancelled job reports
status 5 instead of upstream's 4 + "Query cancelled by user."), job_ttl
(seconds a job is remembered before its lookup answers 500; 12 h, times
time_scale).

Query definitions: as fake_dune.py. "parameters" is either {"days": 7} (types
inferred: number for numbers, text for strings) or Redash's own list
[{"name", "type", "value", "enumOptions", "multiValuesOptions"}, ...].
"outcome" partial is served as completed (Redash has no partial results) and
expired as completed (Redash results do not expire).

Executing: POST /api/queries/<id>/results takes {"parameters", "max_age"} in
a JSON body. POST /api/queries/<id>/refresh takes upstream's p_<name>=<value>
query-string parameters and always runs; when its body is a JSON object with
"parameters" or "max_age" (the form Nansen's docs give), the body wins.

Generated rows: as fake_dune.py, and the "name" column carries the result id
("name_7_r4243") so that results of different runs differ.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import signal
import sys
import time
import uuid

from fake_dune import (BUILTIN_QUERIES, DATE_COLUMN_NAMES, FLOAT_TYPES, INTEGER_TYPES, ApiRequest,
                       FakeDune, Query, Response, _non_negative_number, _redact_query, json_bytes,
                       load_scenario, write_port_file)
from urllib.parse import parse_qsl, urlsplit

MSG_LOGIN = "Couldn't find resource. Please login and try again."
MSG_NO_RESULT = "No cached result found for this query."
MSG_INTERNAL = "Internal Server Error"
MSG_CANCELLED = "Query cancelled by user."
MSG_ARCHIVED = "You do not have permission to run queries with this data source."
MSG_TIMEOUT = "Query exceeded Redash query execution time limit."
HTML_404 = ("<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
            "<body><h1>Not Found</h1></body></html>\n")

PENDING, STARTED, SUCCESS, FAILURE, CANCELLED = 1, 2, 3, 4, 5
STATE_WORDS = {"pending": PENDING, "started": STARTED, "success": SUCCESS,
               "failure": FAILURE, "cancelled": CANCELLED}
FIRST_RESULT_ID = 4242

# Query 1009: one parameter of each type, each echoed in a column.
TYPED_QUERY = {
    "id": 1009, "name": "typed parameters",
    "columns": [{"name": "n", "type": "integer"}, {"name": "days", "type": "integer"},
                {"name": "label", "type": "varchar"}, {"name": "since", "type": "varchar"},
                {"name": "span", "type": "varchar"}, {"name": "kind", "type": "varchar"},
                {"name": "tags", "type": "varchar"}],
    "generate_rows": 2,
    "parameters": [
        {"name": "days", "title": "Days", "type": "number", "value": 7},
        {"name": "label", "title": "Label", "type": "text", "value": "all"},
        {"name": "since", "title": "Since", "type": "date", "value": "2024-01-01"},
        {"name": "span", "title": "Span", "type": "date-range",
         "value": {"start": "2024-01-01", "end": "2024-01-31"}},
        {"name": "kind", "title": "Kind", "type": "enum", "enumOptions": "dex\ncex\nbridge",
         "value": "dex"},
        {"name": "tags", "title": "Tags", "type": "enum", "enumOptions": "a\nb\nc",
         "value": ["a"], "multiValuesOptions": {"prefix": "", "suffix": "", "separator": ","}},
    ],
    "pending_seconds": 0.2, "run_seconds": 0.5, "prior_runs": 0,
}

REDASH_QUERIES = BUILTIN_QUERIES + [TYPED_QUERY]


def redash_type(column: dict) -> str:
    kind, name = column["type"].lower(), column["name"]
    if name in DATE_COLUMN_NAMES or kind.startswith(("timestamp", "datetime")):
        return "datetime"
    if kind == "date":
        return "date"
    if kind in INTEGER_TYPES:
        return "integer"
    if kind in FLOAT_TYPES or kind.startswith("decimal"):
        return "float"
    if kind == "boolean":
        return "boolean"
    return "string"


def parameter_definitions(parameters) -> list:
    if isinstance(parameters, list):
        return [dict(d) for d in parameters]
    defs = []
    for name, value in (parameters or {}).items():
        kind = "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else "text"
        defs.append({"name": name, "title": name, "type": kind, "value": value})
    return defs


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _is_date(value) -> bool:
    if not isinstance(value, str):
        return False
    for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            datetime.datetime.strptime(value, fmt)
            return True
        except ValueError:
            pass
    return value.startswith("d_")  # a dynamic date such as d_now


def value_fits(definition: dict, value) -> bool:
    """Redash's check of a value against its parameter definition."""
    kind = definition.get("type", "text")
    if kind == "number":
        return _is_number(value)
    if kind == "text":
        return isinstance(value, str)
    if kind in ("date", "datetime-local", "datetime-with-seconds"):
        return _is_date(value)
    if kind in ("date-range", "datetime-range", "datetime-range-with-seconds"):
        if isinstance(value, str):
            return value.startswith("d_")
        return isinstance(value, dict) and _is_date(value.get("start")) and _is_date(value.get("end"))
    if kind == "enum":
        options = str(definition.get("enumOptions", "")).split("\n")
        if definition.get("multiValuesOptions"):
            return isinstance(value, list) and all(v in options for v in value)
        return value in options
    return True  # query-based dropdowns: not checked here


class Job:
    """One run. Its status follows from the clock unless frozen."""

    def __init__(self, job_id, query, params, submitted, pending, run, result_id):
        self.id = job_id
        self.query = query
        self.params = params
        self.submitted = submitted
        self.started = submitted + pending
        self.ended = submitted + max(pending, run)
        self.result_id = result_id
        self.frozen = None  # (status, error) once cancelled or forced

    def status(self, now: float, cancel_status5=False):
        """(status number, error text)."""
        if self.frozen is not None:
            status, error = self.frozen
        elif now < self.started:
            status, error = PENDING, ""
        elif now < self.ended:
            status, error = STARTED, ""
        elif self.query.outcome == "failed":
            status, error = FAILURE, self.query.error
        elif self.query.outcome == "cancelled":
            status, error = FAILURE, MSG_CANCELLED
        else:
            status, error = SUCCESS, ""
        if status == FAILURE and error == MSG_CANCELLED and cancel_status5:
            status, error = CANCELLED, ""
        return status, error


class Result:
    def __init__(self, rid, query, params, retrieved_at):
        self.id = rid
        self.query = query
        self.params = params
        self.retrieved_at = retrieved_at


class FakeRedash(FakeDune):
    """The fake Redash: FakeDune's server, log, faults and control, Redash's API."""

    kind = "redash"

    def __init__(self, queries=None, key="test-key", host="127.0.0.1", port=0,
                 time_scale=1.0, verbose=False):
        self._jobs = {}            # job id -> Job
        self._results = {}         # result id -> Result (only once its run has ended)
        self._pending_results = []  # Jobs whose result is not stored yet
        self._definitions = {}     # qid -> [parameter definitions]
        self._latest = {}          # qid -> result id
        self._next_result_id = FIRST_RESULT_ID
        self.old_server = False
        self.cancel_status5 = False
        self.job_ttl = 12 * 3600.0
        super().__init__(queries=REDASH_QUERIES if queries is None else queries, key=key,
                         host=host, port=port, time_scale=time_scale, verbose=verbose)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- control

    def add_query(self, definition: dict):
        definition = dict(definition)
        defs = parameter_definitions(definition.get("parameters"))
        definition["parameters"] = {d["name"]: d.get("value") for d in defs}
        if definition.get("outcome") in ("partial", "expired"):
            definition["outcome"] = "completed"
        query = Query(definition)
        now = time.time()
        with self._lock:
            self._queries[query.id] = query
            self._definitions[query.id] = defs
            self._paid_runs.setdefault(query.id, 0)
            self._latest.pop(query.id, None)
            for k in range(query.prior_runs):
                rid = self._new_result_id()
                self._store_result(Result(rid, query, dict(query.parameters),
                                          now - (query.prior_runs - k) * 3600))

    def settings(self, **changes) -> dict:
        checks = {
            "time_scale": lambda v: _non_negative_number(v, "time_scale"),
            "key": str, "verbose": bool, "old_server": bool, "cancel_status5": bool,
            "job_ttl": lambda v: _non_negative_number(v, "job_ttl"),
        }
        unknown = set(changes) - set(checks)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        values = {name: checks[name](value) for name, value in changes.items()}
        with self._lock:
            for name, value in values.items():
                setattr(self, name, value)
            return {"time_scale": self.time_scale, "verbose": self.verbose,
                    "old_server": self.old_server, "cancel_status5": self.cancel_status5,
                    "job_ttl": self.job_ttl}

    def set_state(self, execution_id: str, state):
        """Force a job's status: a word (pending, started, success, failure,
        cancelled) or any number, unknown ones included."""
        if isinstance(state, str) and state in STATE_WORDS:
            status = STATE_WORDS[state]
        elif isinstance(state, int) and not isinstance(state, bool):
            status = state
        else:
            raise ValueError("state must be pending, started, success, failure, cancelled or a number")
        with self._lock:
            job = self._jobs.get(execution_id)
            if job is None:
                raise KeyError(f"no job {execution_id}")
            error = {FAILURE: job.query.error}.get(status, "")
            if state == "cancelled":
                status, error = FAILURE, MSG_CANCELLED
            job.frozen = (status, error)
            if status == SUCCESS:
                self._finish(job, time.time())

    # ---- truth for tests

    def query_ids(self) -> list:
        with self._lock:
            return sorted(self._queries)

    def result_id(self, execution_id: str):
        """The result id of a job (once it succeeded) or of "result-<rid>"."""
        if execution_id.startswith("result-"):
            return int(execution_id[len("result-"):])
        with self._lock:
            self._settle(time.time())
            job = self._jobs[execution_id]
            return job.result_id if job.result_id in self._results else None

    def latest_result_id(self, qid):
        with self._lock:
            self._settle(time.time())
            return self._latest.get(int(qid))

    def truth_csv(self, execution_id: str) -> bytes:
        with self._lock:
            return self._csv(self._results[self.result_id(execution_id)])

    def truth_json(self, execution_id: str) -> bytes:
        with self._lock:
            return json_bytes(self._result_document(self._results[self.result_id(execution_id)]))

    # ---- requests

    def make_request(self, method, target, headers, body, default_host) -> ApiRequest:
        split = urlsplit(target)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        url_keys = [value for name, value in pairs if name == "api_key"]
        header = headers.get("Authorization") or ""
        header_key = header[4:].strip() if header[:4].lower() == "key " else None
        if url_keys:  # the query string wins over the header
            key_ok = self._key_matches(url_keys[0])
        else:
            key_ok = header_key is not None and self._key_matches(header_key)
        return ApiRequest(method=method, path=split.path, query=_redact_query(split.query),
                          params=[(n, v) for n, v in pairs if n != "api_key"],
                          host=headers.get("Host") or default_host, body=body,
                          key_ok=key_ok, key_in_url=bool(url_keys))

    def take_fault(self, method: str, target: str):
        fault = super().take_fault(method, target)
        if fault and fault["action"] == "status" and fault.get("body") is None and fault["code"] != 429:
            message = {500: MSG_INTERNAL, 404: MSG_LOGIN if fault["code"] == 404 else None}.get(
                fault["code"]) or f"HTTP {fault['code']}"
            fault["body"] = json.dumps({"message": message})
        return fault

    def record(self, request: ApiRequest, status, fault=None):
        super().record(request, status, fault)
        with self._lock:
            if self._log:
                self._log[-1]["body"] = request.body.decode("utf-8", "replace")

    def handle_api(self, request: ApiRequest) -> Response:
        if not request.key_ok:
            return _message(404, MSG_LOGIN)
        parts = request.path.strip("/").split("/")
        method = "GET" if request.method == "HEAD" else request.method
        try:
            with self._lock:
                self._settle(time.time())
                return self._route(method, parts, request)
        except _Reply as reply:
            return reply.response

    def _route(self, method, parts, request) -> Response:
        if len(parts) < 2 or parts[0] != "api":
            return _html_404()
        rest = parts[1:]
        if rest[0] == "jobs" and len(rest) == 2:
            if method == "GET":
                return self._job_reply(rest[1])
            if method == "DELETE":
                return self._cancel(rest[1])
        if rest[0] == "query_results" and len(rest) == 2 and method == "GET":
            rid, ext = _split_ext(rest[1])
            return self._result_reply(self._result(rid, None), ext)
        if rest[0] == "queries" and len(rest) >= 2:
            query = self._query(rest[1])
            tail = rest[2:]
            if not tail and method == "GET":
                return _json(200, self._query_document(query))
            if tail == ["results"] and method == "POST":
                return self._execute(request, query, refresh=False)
            if tail == ["refresh"] and method == "POST":
                return self._execute(request, query, refresh=True)
            if len(tail) == 1 and method == "GET" and tail[0].startswith("results."):
                ext = tail[0][len("results."):]
                rid = self._latest.get(query.id)
                if rid is None:
                    return _message(404, MSG_NO_RESULT)
                return self._result_reply(self._results[rid], ext)
            if len(tail) == 2 and tail[0] == "results" and method == "GET":
                rid, ext = _split_ext(tail[1])
                return self._result_reply(self._result(rid, query), ext)
            if len(tail) == 2 and tail[0] == "jobs" and method == "GET":
                return self._job_reply(tail[1])
        return _html_404()

    # ---- routes

    def _query(self, text) -> Query:
        query = self._queries.get(int(text)) if text.isdigit() else None
        if query is None:
            raise _Reply(_message(404, "Query not found."))
        return query

    def _query_document(self, query) -> dict:
        return {"id": query.id, "name": query.name, "query": _query_text(query),
                "options": {"parameters": self._definitions.get(query.id, [])},
                "latest_query_data_id": self._latest.get(query.id), "data_source_id": 1,
                "is_archived": False, "is_draft": False, "schedule": None, "tags": [],
                "version": 1, "api_key": "QUERYKEYNOTSECRET"}

    def _execute(self, request, query, refresh) -> Response:
        try:
            body = json.loads(request.body) if request.body.strip() else None
        except ValueError:
            body = None
        nansen_form = isinstance(body, dict) and ("parameters" in body or "max_age" in body)
        if refresh and not nansen_form:
            given = {name[2:]: value for name, value in request.params if name.startswith("p_")}
            max_age = 0
        else:
            if not isinstance(body, dict):
                body = {}
            given = body.get("parameters") or {}
            max_age = body.get("max_age", -1 if not refresh else 0)
            if not isinstance(given, dict):
                return _message(400, "parameters must be an object")
        defs = self._definitions.get(query.id, [])
        missing = [d["name"] for d in defs if given.get(d["name"]) is None]
        if missing:
            return _json(400, {"job": {"status": FAILURE,
                                       "error": f"Missing parameter value for: {', '.join(missing)}"}})
        bad = [d["name"] for d in defs if not value_fits(d, given[d["name"]])]
        if bad:
            return _message(400, "The following parameter values are incompatible with their "
                                 f"definitions: {', '.join(bad)}")
        if query.archived:
            return _message(403, MSG_ARCHIVED)
        params = {d["name"]: given[d["name"]] for d in defs}
        now = time.time()
        if max_age is None or (isinstance(max_age, (int, float)) and max_age != 0):
            cached = self._cached(query, params, now, max_age)
            if cached is not None:
                return _json(200, self._result_document(cached))  # {"query_result": ...}
        for job in self._jobs.values():  # the same text already queued or running
            if job.query is query and job.params == params and \
                    job.status(now)[0] in (PENDING, STARTED) and job.frozen is None:
                return _json(200, {"job": self._job_document(job, now)})
        scale = self.time_scale
        job = Job(str(uuid.uuid4()), query, params, now, query.pending_seconds * scale,
                  query.run_seconds * scale, self._new_result_id())
        self._jobs[job.id] = job
        self._pending_results.append(job)
        self._paid_runs[query.id] = self._paid_runs.get(query.id, 0) + 1
        self._settle(now)  # a run of no duration has its result already: never success without one
        return _json(200, {"job": self._job_document(job, now)})

    def _cached(self, query, params, now, max_age):
        best = None
        for result in self._results.values():
            if result.query is query and result.params == params:
                if max_age not in (None, -1) and now - result.retrieved_at > max_age:
                    continue
                if best is None or result.retrieved_at >= best.retrieved_at:
                    best = result
        return best

    def _job(self, job_id) -> Job:
        job = self._jobs.get(job_id)
        ttl = self.job_ttl * self.time_scale if self.time_scale > 0 else self.job_ttl
        if job is None or time.time() - job.submitted > ttl:
            raise _Reply(_message(500, MSG_INTERNAL))  # upstream's answer for an unknown job
        return job

    def _job_reply(self, job_id) -> Response:
        return _json(200, {"job": self._job_document(self._job(job_id), time.time())})

    def _job_document(self, job, now) -> dict:
        status, error = job.status(now, self.cancel_status5)
        done = status == SUCCESS and job.result_id in self._results
        document = {"id": job.id,
                    "updated_at": 0 if status == PENDING else _iso(min(now, job.ended)),
                    "status": status, "error": error,
                    "result": job.result_id if done else None,
                    "query_result_id": job.result_id if done else None}
        if self.old_server:
            del document["result"]
        return document

    def _cancel(self, job_id) -> Response:
        job = self._job(job_id)
        status, _ = job.status(time.time())
        if status not in (SUCCESS, FAILURE, CANCELLED):  # not finished: cancelled
            job.frozen = (FAILURE, MSG_CANCELLED)
            if job in self._pending_results:
                self._pending_results.remove(job)
        return Response(200, b"null", "application/json")

    def _result(self, text, query) -> Result:
        result = self._results.get(int(text)) if text.isdigit() else None
        if result is None or (query is not None and result.query.id != query.id):
            raise _Reply(_message(404, "Query result not found."))
        return result

    def _result_reply(self, result, ext) -> Response:
        if ext == "json":
            return _json(200, self._result_document(result))
        if ext == "csv":
            return Response(200, self._csv(result), "text/csv; charset=UTF-8")
        return _html_404()

    # ---- results

    def _new_result_id(self) -> int:
        rid = self._next_result_id
        self._next_result_id += 1
        return rid

    def _settle(self, now):
        """Store the results of runs that have ended successfully by now."""
        for job in list(self._pending_results):
            status, _ = job.status(now)
            if status == SUCCESS:
                self._finish(job, now)
            elif status in (FAILURE, CANCELLED):
                self._pending_results.remove(job)

    def _finish(self, job, now):
        if job in self._pending_results:
            self._pending_results.remove(job)
        if job.result_id not in self._results:
            self._store_result(Result(job.result_id, job.query, job.params, min(now, job.ended)))

    def _store_result(self, result):
        self._results[result.id] = result
        query = result.query
        if result.params == query.parameters:  # "latest" tracks the default parameters only
            current = self._latest.get(query.id)
            if current is None or self._results[current].retrieved_at <= result.retrieved_at:
                self._latest[query.id] = result.id

    def _rows(self, result) -> list:
        query = result.query
        count = query.row_count(result.params)
        rows = query.page(result.params, 0, count)
        out = []
        for row in rows:
            values = []
            for column, value in zip(query.columns, row):
                if column["name"] == "name" and isinstance(value, str) and query.rows is None:
                    value = f"{value}_r{result.id}"
                elif redash_type(column) == "datetime" and isinstance(value, str) and \
                        column["name"] not in result.params:
                    value = _to_iso(value)
                values.append(value)
            out.append(values)
        return out

    def _result_document(self, result) -> dict:
        query = result.query
        names = query.column_names
        rows = []
        for i, values in enumerate(self._rows(result)):
            # Redash leaves keys of nulls out of some rows
            rows.append({n: v for n, v in zip(names, values) if not (v is None and i % 2)})
        columns = [{"name": c["name"], "friendly_name": c["name"], "type": redash_type(c)}
                   for c in query.columns]
        return {"query_result": {
            "id": result.id, "query_hash": hashlib.md5(
                f"{query.id}:{json.dumps(result.params, sort_keys=True)}".encode()).hexdigest(),
            "query": _query_text(query),
            "data": {"columns": columns, "rows": rows},
            "data_source_id": 1, "runtime": 0.0123,
            "retrieved_at": _iso(result.retrieved_at) + "Z"}}

    def _csv(self, result) -> bytes:
        query = result.query
        kinds = [redash_type(c) for c in query.columns]
        lines = [",".join(_csv_field(n) for n in query.column_names)]
        for values in self._rows(result):
            lines.append(",".join(_csv_field(_csv_text(v, k)) for v, k in zip(values, kinds)))
        return ("\r\n".join(lines) + "\r\n").encode()


class _Reply(Exception):
    def __init__(self, response):
        super().__init__(response.status)
        self.response = response


def _json(status, document) -> Response:
    return Response(status, json_bytes(document), "application/json")


def _message(status, message) -> Response:
    return _json(status, {"message": message})


def _html_404() -> Response:
    return Response(404, HTML_404.encode(), "text/html; charset=utf-8")


def _split_ext(name):
    if "." not in name:
        raise _Reply(_html_404())  # the extension is required
    stem, ext = name.rsplit(".", 1)
    return stem, ext


def _iso(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def _to_iso(text: str) -> str:
    """fake_dune's "2021-06-07 13:21:10.000 UTC" as Redash's ISO datetime."""
    try:
        moment = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.000 UTC")
    except ValueError:
        return text
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _query_text(query) -> str:
    params = " ".join(f"{{{{{name}}}}}" for name in query.parameters)
    return f"SELECT * FROM fake_{query.id} /* {query.name} */ {params}".strip()


def _csv_text(value, kind) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if kind in ("datetime", "date") and isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            return value
        return moment.strftime("%d/%m/%y %H:%M" if kind == "datetime" else "%d/%m/%y")
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="A local fake of a Redash-compatible API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--key", default="test-key", help="the API key to require")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--scenario", help="JSON file of query definitions")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args(argv)

    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        queries = load_scenario(args.scenario) if args.scenario else None
        fake = FakeRedash(queries=queries, key=args.key, host=args.host, port=args.port,
                          time_scale=args.time_scale, verbose=args.verbose)
    except (OSError, ValueError) as e:
        print(f"fake_redash: {e}", file=sys.stderr)
        return 2
    try:
        port = fake.start()
    except OSError as e:
        print(f"fake_redash: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    if args.port_file:
        write_port_file(args.port_file, port)
    print(f"PORT {port}", flush=True)
    signal.sigwait(stop_signals)
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
