#!/usr/bin/env python3
"""A local fake of the Dune Analytics API v1, for execfs's tests and demo.

Faithful to the facts in the project's notes on the Dune API (api/dune.md):
routes, status documents, paging, CSV layout and error messages. Standard
library only.

Command line:

    python3 tests/fake_dune.py [--host 127.0.0.1] [--port 0] [--key test-key]
                               [--port-file PATH] [--scenario FILE.json]
                               [--max-page-rows 1000] [--time-scale 1.0]
                               [--verbose]

Prints "PORT <n>" on stdout once listening (and writes <n> to --port-file,
atomically). A client's base URL is then http://127.0.0.1:<n>/api/v1.
Serves until SIGTERM or SIGINT.

In-process use from a test:

    fake = FakeDune(key="k", time_scale=0)
    port = fake.start()
    ...
    fake.stop()

Control interface (no API key, never in the request log), also available as
FakeDune methods of the same name:

    GET  /_fake/log         every API request handled (key value never stored)
    POST /_fake/reset       clear the log and the faults
    GET  /_fake/faults      pending faults
    POST /_fake/faults      add a fault, see add_fault()
    GET  /_fake/executions  {"<qid>": executions created through execute}
    POST /_fake/queries     add or replace a query definition
    GET  /_fake/settings    current settings
    POST /_fake/settings    change max_page_rows, time_scale, key, verbose, rate_mb_s
                            (each response body sent at most that fast, 0: no limit;
                            a network's pace, for benchmarks)
    POST /_fake/state       {"execution_id": eid, "state": "QUERY_STATE_..."}

Faults (add_fault, POST /_fake/faults): each matches requests by a substring
of path+query ("match") and optionally a method, and acts on "count" of them
(default 1, -1: every one). Actions:

    status              answer with HTTP "code" ("body", "retry_after")
    html                a proxy's HTML page, 200
    drop                hang up before answering (the request is not acted on)
    drop_after_request  act on the request, then hang up without answering
    cut_body            headers and the first "at" bytes of the body (default
                        half), then hang up; "reset": true ends with a TCP RST
    delay               wait "seconds" before answering
    stall_body          headers and half the body, "seconds" of silence, the rest
    body                answer with "body" (text) instead: "code" (200),
                        "content_type" (guessed from the body), "headers"
                        {name: value}, "content_length" (declared length, a lie
                        when it differs: the connection is closed after the body)
    rewrite             the real answer, changed, in this order: "set" {path:
                        raw JSON text} and "delete" [path] (path: keys and list
                        indices joined by dots, "result.metadata.row_count";
                        the raw text goes in verbatim, so 1e400 or broken JSON
                        can be sent), "drop_rows" N (the last N rows of a JSON
                        result or a CSV body, nothing else changed), "replace"
                        [[old, new], ...] (text of the body), "truncate" N (keep
                        the first N bytes, or drop the last -N; Content-Length
                        stays honest), "headers" {name: value, or null to
                        remove}, "content_type", "content_length" (as for body)

Query definition (a scenario file is a JSON list of these, or
{"queries": [...]}):

    {"id": 1001, "name": "...",
     "columns": [{"name": "n", "type": "integer"}, ...],
     "rows": [[1, "a"], ...]            literal rows (lists or objects), or
     "generate_rows": 5000              rows made by formula from the row index,
                                        or the name of a parameter holding the count
     "parameters": {"days": 7},         defaults; the only names execute accepts
     "pending_seconds": 0.2,            queued for this long (times --time-scale)
     "run_seconds": 0.5,                finished this long after submission
     "outcome": "completed",            completed|partial|failed|cancelled|expired
     "error": "line 1:8: ...",          the message of a failed run
     "archived": false,                 execute answers 403
     "nil_style": false,                CSV writes null as <nil> instead of nothing
     "prior_runs": 1,                   finished runs that exist at startup
     "memo_pages": false}               keep each page's body once served, and serve
                                        it again from memory (for benchmarks of
                                        big results: the fake's cost drops out)

Generated rows: a column named like a parameter holds that parameter's value;
"name" ends with a tag of the run ("name_7_r3Q9Z"), so different runs differ;
"note" holds text that needs CSV quoting (commas, quotes, CR/LF) and some nulls;
"day"/"date"/"time" and timestamp types hold dates as Dune writes them; other
columns follow their type (integer: the row index i, double: i * 1.5, boolean,
uint256/int256 as strings, anything else "<column>_<i>").
"""

from __future__ import annotations

import argparse
import datetime
import hmac
import json
import os
import re
import secrets
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

API_BASE = "/api/v1"
CONTROL_PREFIX = "/_fake/"

ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RETENTION_SECONDS = 90 * 24 * 3600
MAX_REQUEST_BODY = 16 * 1024 * 1024
MAX_LOG_ENTRIES = 100_000

PENDING = "QUERY_STATE_PENDING"
EXECUTING = "QUERY_STATE_EXECUTING"
COMPLETED = "QUERY_STATE_COMPLETED"
PARTIAL = "QUERY_STATE_COMPLETED_PARTIAL"
FAILED = "QUERY_STATE_FAILED"
CANCELLED = "QUERY_STATE_CANCELLED"
EXPIRED = "QUERY_STATE_EXPIRED"

# The docs once spell CANCELED; a forced state may use it to test clients.
TERMINAL_STATES = {COMPLETED, PARTIAL, FAILED, CANCELLED, EXPIRED, "QUERY_STATE_CANCELED"}
STATES_WITH_RESULT = {COMPLETED, PARTIAL}
OUTCOME_STATES = {
    "completed": COMPLETED,
    "partial": PARTIAL,
    "failed": FAILED,
    "cancelled": CANCELLED,
    "expired": EXPIRED,
}
PERFORMANCE_TIERS = ("medium", "large")

MSG_INVALID_KEY = "invalid API Key"
MSG_NOT_FOUND = "not found"
MSG_QUERY_NOT_FOUND = "not found: Query not found or private"
MSG_NO_EXECUTION = "not found: No execution found for the latest version of the given query"
MSG_ARCHIVED = "Not allowed to execute query. Query is archived, unsaved or not enough permissions."
MSG_INVALID_BODY = "invalid request body"
MSG_BILLING = (
    "This api request would exceed your configured limits per billing cycle. "
    "Please visit your settings to increase your limits."
)
MSG_INTERNAL = "An internal error occurred"
MSG_CSV_NOT_READY = "Query state is not QUERY_STATE_COMPLETED, cannot provide CSV Result"
MSG_PARTIAL = (
    "Query result is partial (QUERY_STATE_COMPLETED_PARTIAL): "
    "set allow_partial_results=true to read it"
)
DEFAULT_FAILURE = "line 1:1: Query failed"

FAULT_ACTIONS = ("status", "drop", "drop_after_request", "cut_body", "delay", "stall_body",
                 "html", "body", "rewrite")
FAULT_HTML = (
    "<html><head><title>Service Unavailable</title></head>"
    "<body><h1>Down for maintenance</h1></body></html>\n"
)


# --------------------------------------------------------------------------
# Built-in demo queries (the format of a scenario file)

STANDARD_COLUMNS = [
    {"name": "n", "type": "integer"},
    {"name": "name", "type": "varchar"},
    {"name": "value", "type": "double"},
    {"name": "day", "type": "varchar"},
    {"name": "note", "type": "varchar"},
]

BUILTIN_QUERIES = [
    {"id": 1001, "name": "fast", "columns": STANDARD_COLUMNS, "generate_rows": 10,
     "pending_seconds": 0.2, "run_seconds": 0.5, "prior_runs": 1},
    {"id": 1002, "name": "slow", "columns": STANDARD_COLUMNS, "generate_rows": 5,
     "pending_seconds": 1.0, "run_seconds": 6.0, "prior_runs": 1},
    {"id": 1003, "name": "parameterised",
     "columns": [{"name": "n", "type": "integer"}, {"name": "day", "type": "varchar"},
                 {"name": "chain", "type": "varchar"}, {"name": "volume", "type": "double"}],
     "generate_rows": "days", "parameters": {"days": 7, "chain": "ethereum"},
     "pending_seconds": 0.2, "run_seconds": 0.5, "prior_runs": 1},
    {"id": 1004, "name": "fails", "columns": STANDARD_COLUMNS, "generate_rows": 0,
     "pending_seconds": 0.2, "run_seconds": 0.5, "outcome": "failed",
     "error": "line 1:8: Column 'x' cannot be resolved", "prior_runs": 0},
    {"id": 1005, "name": "multi-page", "columns": STANDARD_COLUMNS, "generate_rows": 5000,
     "pending_seconds": 0.2, "run_seconds": 1.0, "prior_runs": 1},
    {"id": 1006, "name": "partial", "columns": STANDARD_COLUMNS, "generate_rows": 20,
     "pending_seconds": 0.2, "run_seconds": 0.5, "outcome": "partial", "prior_runs": 1},
    {"id": 1007, "name": "never run",
     "columns": [{"name": "id", "type": "integer"}, {"name": "label", "type": "varchar"},
                 {"name": "amount", "type": "uint256"}, {"name": "ratio", "type": "double"}],
     "rows": [[1, "alpha", "2985646787349243786078", 0.5],
              [2, "beta, with comma", "1", None],
              [3, None, "0", 1e-07]],
     "pending_seconds": 0.2, "run_seconds": 0.5, "prior_runs": 0},
    {"id": 1008, "name": "archived", "columns": STANDARD_COLUMNS, "generate_rows": 3,
     "archived": True, "prior_runs": 1},
]


# --------------------------------------------------------------------------
# Result rows

BASE_TIME = datetime.datetime(2021, 6, 7, 13, 21, 10)
BIG_INTEGER_BASE = 2985646787349243786078
INTEGER_TYPES = {"integer", "int", "bigint", "smallint", "tinyint"}
FLOAT_TYPES = {"double", "real", "float"}
DATE_COLUMN_NAMES = {"day", "date", "time", "block_time", "ts"}
NOTE_CYCLE = ("note {i}", "has, comma", "note {i}", 'says "hi"', None,
              "two\nlines", 'all, "three"\r\nkinds')


def generated_value(column: dict, i: int, params: dict):
    """The value of one cell of a generated result: a pure function of its inputs."""
    name, kind = column["name"], column["type"].lower()
    if name in params:
        return params[name]
    if name == "note":
        note = NOTE_CYCLE[i % len(NOTE_CYCLE)]
        return None if note is None else note.format(i=i)
    if name in DATE_COLUMN_NAMES or kind.startswith(("timestamp", "date")):
        moment = BASE_TIME + datetime.timedelta(minutes=i)
        return moment.strftime("%Y-%m-%d %H:%M:%S.000 UTC")
    if kind in INTEGER_TYPES:
        return i
    if kind in FLOAT_TYPES or kind.startswith("decimal"):
        return i * 1.5
    if kind == "boolean":
        return i % 2 == 0
    if kind.startswith(("uint", "int")):  # uint256, int256: too big for JSON numbers
        return str(BIG_INTEGER_BASE + i)
    return f"{name}_{i}"


def count_from_parameter(value) -> int:
    """A row count read from a parameter value; anything unusable counts as 0."""
    if isinstance(value, bool):
        return 0
    try:
        return max(0, int(float(value)))
    except (TypeError, ValueError, OverflowError):
        return 0


def parameter_text(value) -> str:
    """How a parameter value compares with a params.<name>= filter."""
    return value if isinstance(value, str) else json.dumps(value)


class Query:
    """One query definition, validated. Immutable once built."""

    def __init__(self, definition: dict):
        if not isinstance(definition, dict):
            raise ValueError("a query definition must be a JSON object")
        d = definition
        self.id = _positive_int(d.get("id"), "id")
        self.name = str(d.get("name", f"query {self.id}"))
        self.parameters = d.get("parameters") or {}
        if not isinstance(self.parameters, dict):
            raise ValueError(f"query {self.id}: parameters must be an object")

        if "rows" in d and "generate_rows" in d:
            raise ValueError(f"query {self.id}: give rows or generate_rows, not both")
        if "rows" in d and "columns" not in d:
            raise ValueError(f"query {self.id}: literal rows need columns")
        self.columns = [_column(c, self.id) for c in d.get("columns", STANDARD_COLUMNS)]
        self.column_names = [c["name"] for c in self.columns]
        self.column_types = [c["type"] for c in self.columns]

        self.rows = None
        self.generate_rows = 0
        if "rows" in d:
            self.rows = [self._literal_row(r) for r in d["rows"]]
        elif "generate_rows" in d:
            count = d["generate_rows"]
            if isinstance(count, str):
                if count not in self.parameters:
                    raise ValueError(f"query {self.id}: generate_rows names no parameter")
            else:
                count = _non_negative_int(count, "generate_rows")
            self.generate_rows = count

        self.pending_seconds = _non_negative_number(d.get("pending_seconds", 0.2), "pending_seconds")
        self.run_seconds = _non_negative_number(d.get("run_seconds", 0.5), "run_seconds")
        self.outcome = d.get("outcome", "completed")
        if self.outcome not in OUTCOME_STATES:
            raise ValueError(f"query {self.id}: outcome must be one of {', '.join(OUTCOME_STATES)}")
        self.error = str(d.get("error") or DEFAULT_FAILURE)
        self.archived = bool(d.get("archived", False))
        self.nil_style = bool(d.get("nil_style", False))
        self.prior_runs = _non_negative_int(d.get("prior_runs", 1), "prior_runs")
        self.memo_pages = bool(d.get("memo_pages", False))

    def _literal_row(self, row) -> list:
        if isinstance(row, dict):
            return [row.get(name) for name in self.column_names]
        if not isinstance(row, list) or len(row) != len(self.columns):
            raise ValueError(f"query {self.id}: each row needs {len(self.columns)} values")
        return row

    def row_count(self, params: dict) -> int:
        if self.rows is not None:
            return len(self.rows)
        if isinstance(self.generate_rows, str):
            return count_from_parameter(params.get(self.generate_rows))
        return self.generate_rows

    def page(self, params: dict, start: int, stop: int) -> list:
        """Rows start..stop-1 as lists in column order, made without the others."""
        if self.rows is not None:
            return self.rows[start:stop]
        return [[generated_value(c, i, params) for c in self.columns] for i in range(start, stop)]


def _column(column, qid) -> dict:
    if not isinstance(column, dict) or not isinstance(column.get("name"), str):
        raise ValueError(f"query {qid}: each column needs a name")
    return {"name": column["name"], "type": str(column.get("type", "varchar"))}


def _positive_int(value, what) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{what} must be a positive integer")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{what} must be a positive integer") from None
    if number <= 0:
        raise ValueError(f"{what} must be a positive integer")
    return number


def _non_negative_int(value, what) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer")
    return value


def _non_negative_number(value, what) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{what} must be a non-negative number")
    return float(value)


# --------------------------------------------------------------------------
# Executions

class Execution:
    """One run of a query. Its state follows from the clock, unless frozen by
    a cancel or a forced state."""

    def __init__(self, eid, query, params, submitted, pending, run, performance):
        self.id = eid
        self.query = query
        self.params = params
        self.submitted = submitted
        self.started = submitted + pending
        self.ended = submitted + max(pending, run)
        self.performance = performance
        self.cancelled_at = None
        self.frozen = None  # (state, started, ended) once cancelled or forced
        self.total_rows = query.row_count(params)
        self._total_bytes = None

    def timeline(self, now: float):
        """(state, started_at or None, ended_at or None) at time now."""
        if self.frozen is not None:
            return self.frozen
        if now < self.started:
            return PENDING, None, None
        if now < self.ended:
            return EXECUTING, self.started, None
        if now >= self.submitted + RETENTION_SECONDS:
            return EXPIRED, self.started, self.ended
        return OUTCOME_STATES[self.query.outcome], self.started, self.ended

    def force(self, state: str, now: float):
        _, started, ended = self.timeline(now)
        if state in TERMINAL_STATES:
            ended = ended if ended is not None else now
            if state in STATES_WITH_RESULT and started is None:
                started = now
        else:
            ended = None
            if state == PENDING:
                started = None
            elif started is None:
                started = now
        self.frozen = (state, started, ended)

    def cancel(self, now: float):
        """Cancel if not finished; a finished execution keeps its state."""
        state, _, _ = self.timeline(now)
        if state not in TERMINAL_STATES:
            self.cancelled_at = now
            self.force(CANCELLED, now)

    def total_bytes(self) -> int:
        """Size of the whole result as JSON rows, estimated from a sample."""
        if self._total_bytes is None:
            sample = self.query.page(self.params, 0, min(self.total_rows, 100))
            if sample:
                sample_bytes = len(json_bytes(sample)) - 2 - (len(sample) - 1)
                self._total_bytes = sample_bytes * self.total_rows // len(sample)
            else:
                self._total_bytes = 0
        return self._total_bytes


def new_execution_id() -> str:
    return "01" + "".join(secrets.choice(ULID_ALPHABET) for _ in range(24))


def rfc3339(moment: float) -> str:
    utc = datetime.datetime.fromtimestamp(moment, datetime.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error_document(message: str) -> dict:
    position = re.match(r"line (\d+):(\d+)", message)
    line, column = (int(position[1]), int(position[2])) if position else (1, 1)
    return {"type": "FAILED_TYPE_EXECUTION_FAILED", "message": message,
            "metadata": {"line": line, "column": column}}


# --------------------------------------------------------------------------
# Responses

@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list = field(default_factory=list)
    declared_length: int = None  # Content-Length to send, when a fault lies about it


class ApiError(Exception):
    """Raised by a route to answer with an error document."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.response = error_response(status, message)


def json_bytes(document) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(status: int, document, headers=()) -> Response:
    return Response(status, json_bytes(document), "application/json", list(headers))


def error_response(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


def csv_field(value, null_text: str) -> str:
    if value is None:
        return null_text
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, str)):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = json.dumps(value, separators=(",", ":"))
    if any(c in text for c in ',"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


def csv_bytes(column_names: list, rows: list, null_text: str) -> bytes:
    lines = [",".join(csv_field(name, null_text) for name in column_names)]
    lines.extend(",".join(csv_field(v, null_text) for v in row) for row in rows)
    return ("\n".join(lines) + "\n").encode()


def fault_response(fault: dict) -> Response:
    """The reply a "status" or "html" fault sends instead of the real one."""
    if fault["action"] == "html":
        return Response(200, FAULT_HTML.encode(), "text/html; charset=utf-8")
    code = fault["code"]
    headers = []
    if fault.get("retry_after") is not None:
        retry_after = fault["retry_after"]
        if float(retry_after).is_integer():
            retry_after = int(retry_after)
        headers.append(("Retry-After", str(retry_after)))
    body = fault.get("body")
    if body is None:
        if code == 429:
            return Response(429, b"Too Many Requests\n", "text/plain; charset=utf-8", headers)
        message = {
            400: "bad request", 401: MSG_INVALID_KEY, 402: MSG_BILLING, 403: MSG_ARCHIVED,
            404: MSG_NOT_FOUND, 409: MSG_CSV_NOT_READY, 500: MSG_INTERNAL,
        }.get(code)
        if message is None:
            try:
                message = HTTPStatus(code).phrase
            except ValueError:
                message = f"HTTP {code}"
        return json_response(code, {"error": message}, headers)
    return Response(code, body.encode(), guess_content_type(body), headers)


def guess_content_type(body: str) -> str:
    stripped = body.lstrip()
    if stripped.startswith("<"):
        return "text/html; charset=utf-8"
    if stripped.startswith(("{", "[")):
        return "application/json"
    return "text/plain; charset=utf-8"


def body_response(fault: dict) -> Response:
    """The reply a "body" fault sends instead of the real one."""
    body = fault["body"]
    response = Response(fault.get("code", 200), body.encode(),
                        fault.get("content_type") or guess_content_type(body))
    return _with_headers(response, fault)


def _with_headers(response: Response, fault: dict) -> Response:
    for name, value in (fault.get("headers") or {}).items():
        response.headers = [(n, v) for n, v in response.headers if n.lower() != name.lower()]
        if value is not None:
            response.headers.append((name, value))
    if fault.get("content_type") is not None:
        response.content_type = fault["content_type"]
    if fault.get("content_length") is not None:
        response.declared_length = fault["content_length"]
    return response


def _path_parts(path: str) -> list:
    return [int(p) if p.isdigit() else p for p in path.split(".")]


def _parent(document, parts, create):
    node = document
    for part in parts[:-1]:
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) and (part in node or create):
            node = node.setdefault(part, {}) if create else node[part]
        else:
            raise ValueError(f"rewrite: no {part!r} on the way")
    return node


def _csv_record_ends(body: bytes) -> list:
    """Offsets just after each record of a CSV body (quoted newlines stay inside)."""
    ends, quoted = [], False
    for i, c in enumerate(body):
        if c == 0x22:
            quoted = not quoted
        elif c == 0x0A and not quoted:
            ends.append(i + 1)
    return ends


def rewrite_response(response: Response, fault: dict) -> Response:
    """The real reply, changed by a "rewrite" fault (see the module docstring)."""
    body = response.body
    is_csv = response.content_type.startswith("text/csv")
    drop = fault.get("drop_rows", 0)
    if fault.get("set") or fault.get("delete") or (drop and not is_csv):
        document = json.loads(body)
        raw = {}
        for i, (path, text) in enumerate((fault.get("set") or {}).items()):
            token = f"@@fake-raw-{i}-{secrets.token_hex(6)}@@"
            raw[json.dumps(token).encode()] = text.encode()
            parts = _path_parts(path)
            _parent(document, parts, True)[parts[-1]] = token
        for path in fault.get("delete") or ():
            parts = _path_parts(path)
            parent = _parent(document, parts, False)
            if isinstance(parent, dict):
                parent.pop(parts[-1], None)
            elif isinstance(parts[-1], int) and parts[-1] < len(parent):
                del parent[parts[-1]]
        if drop:
            rows = document.get("result", {}).get("rows") if "result" in document else \
                document.get("query_result", {}).get("data", {}).get("rows")
            if not isinstance(rows, list):
                raise ValueError("rewrite: drop_rows found no rows")
            del rows[max(0, len(rows) - drop):]
        body = json_bytes(document)
        for token, text in raw.items():
            body = body.replace(token, text)
    elif drop:
        ends = _csv_record_ends(body)
        keep = max(1, len(ends) - drop)  # the header row stays
        body = body[:ends[keep - 1]] if ends else body
    for old, new in fault.get("replace") or ():
        body = body.replace(old.encode(), new.encode())
    if fault.get("truncate") is not None:
        body = body[:fault["truncate"]]
    return _with_headers(Response(response.status, body, response.content_type,
                                  list(response.headers)), fault)


def validate_fault(fault) -> dict:
    if not isinstance(fault, dict):
        raise ValueError("a fault must be a JSON object")
    action = fault.get("action")
    if action not in FAULT_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(FAULT_ACTIONS)}")
    result = {"action": action, "match": str(fault.get("match", "")),
              "method": fault.get("method"), "count": fault.get("count", 1)}
    if result["method"] is not None:
        result["method"] = str(result["method"]).upper()
    count = result["count"]
    if isinstance(count, bool) or not isinstance(count, int) or (count < 1 and count != -1):
        raise ValueError("count must be a positive integer, or -1 for every request")
    if action == "status":
        code = fault.get("code")
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ValueError("a status fault needs a code between 100 and 599")
        result["code"] = code
        if fault.get("body") is not None:
            result["body"] = str(fault["body"])
        if fault.get("retry_after") is not None:
            result["retry_after"] = _non_negative_number(fault["retry_after"], "retry_after")
    if action in ("delay", "stall_body"):
        result["seconds"] = _non_negative_number(fault.get("seconds"), "seconds")
    if action == "cut_body":
        if fault.get("at") is not None:
            result["at"] = _non_negative_int(fault["at"], "at")
        result["reset"] = bool(fault.get("reset", False))
    if action == "body":
        if not isinstance(fault.get("body"), str):
            raise ValueError("a body fault needs a body (text)")
        result["body"] = fault["body"]
        code = fault.get("code", 200)
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ValueError("code must be between 100 and 599")
        result["code"] = code
    if action == "rewrite":
        _validate_rewrite(fault, result)
    if action in ("body", "rewrite"):
        headers = fault.get("headers") or {}
        if not isinstance(headers, dict) or not all(
                isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in headers.items()):
            raise ValueError("headers must map names to text (or null to remove)")
        result["headers"] = dict(headers)
        if fault.get("content_type") is not None:
            result["content_type"] = str(fault["content_type"])
        if fault.get("content_length") is not None:
            result["content_length"] = _non_negative_int(fault["content_length"], "content_length")
    return result


def _validate_rewrite(fault: dict, result: dict):
    changes = fault.get("set") or {}
    if not isinstance(changes, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in changes.items()):
        raise ValueError("set must map paths to raw JSON text")
    deletes = fault.get("delete") or []
    if not isinstance(deletes, list) or not all(isinstance(p, str) and p for p in deletes):
        raise ValueError("delete must be a list of paths")
    replaces = fault.get("replace") or []
    if not isinstance(replaces, list) or not all(
            isinstance(r, (list, tuple)) and len(r) == 2 and all(isinstance(t, str) for t in r)
            and r[0] for r in replaces):
        raise ValueError("replace must be a list of [old, new] texts")
    result["set"] = dict(changes)
    result["delete"] = list(deletes)
    result["replace"] = [list(r) for r in replaces]
    result["drop_rows"] = _non_negative_int(fault.get("drop_rows", 0), "drop_rows")
    truncate = fault.get("truncate")
    if truncate is not None and (isinstance(truncate, bool) or not isinstance(truncate, int)):
        raise ValueError("truncate must be an integer")
    result["truncate"] = truncate


# --------------------------------------------------------------------------
# The fake service

@dataclass
class ApiRequest:
    method: str
    path: str
    query: str         # raw query string, with any api_key value redacted
    params: list       # decoded (name, value) pairs, without api_key
    host: str
    body: bytes
    key_ok: bool
    key_in_url: bool

    def param(self, name: str, default=None):
        for key, value in self.params:
            if key == name:
                return value
        return default


ROUTES = [
    ("POST", re.compile(r"/query/(\d+)/execute"), "_route_execute"),
    ("GET", re.compile(r"/query/(\d+)/results"), "_route_latest_json"),
    ("GET", re.compile(r"/query/(\d+)/results/csv"), "_route_latest_csv"),
    ("GET", re.compile(r"/execution/([^/]*)/status"), "_route_status"),
    ("GET", re.compile(r"/execution/([^/]*)/results"), "_route_results_json"),
    ("GET", re.compile(r"/execution/([^/]*)/results/csv"), "_route_results_csv"),
    ("POST", re.compile(r"/execution/([^/]*)/cancel"), "_route_cancel"),
]


class FakeDune:
    """The fake API: its state, its routes, and the server that runs them."""

    def __init__(self, queries=None, key="test-key", host="127.0.0.1", port=0,
                 max_page_rows=1000, time_scale=1.0, verbose=False):
        self.host = host
        self.requested_port = port
        self.key = key
        self.max_page_rows = _positive_int(max_page_rows, "max_page_rows")
        self.time_scale = _non_negative_number(time_scale, "time_scale")
        self.verbose = verbose
        self.rate_mb_s = 0.0
        self._lock = threading.RLock()
        self._queries = {}        # qid -> Query (the current version)
        self._executions = {}     # eid -> Execution
        self._history = {}        # qid -> [Execution], oldest first
        self._paid_runs = {}      # qid -> executions created through execute
        self._faults = []
        self._page_memo = {}      # see Query.memo_pages
        self._log = deque(maxlen=MAX_LOG_ENTRIES)
        self._server = None
        self._thread = None
        for definition in BUILTIN_QUERIES if queries is None else queries:
            self.add_query(definition)

    # ---- lifecycle

    def start(self) -> int:
        """Listen and serve in a background thread; returns the port."""
        self._server = _Server((self.host, self.requested_port), self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="fake-dune", daemon=True)
        self._thread.start()
        return self.port

    def stop(self):
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join()
        self._server = None

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}{API_BASE}"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    # ---- control interface (also served under /_fake/)

    def log(self) -> list:
        with self._lock:
            return [dict(entry) for entry in self._log]

    def reset(self):
        with self._lock:
            self._log.clear()
            self._faults.clear()

    def add_fault(self, fault=None, **fields):
        """Add a fault: {"match": substring of path+query, "method": optional,
        "count": N (default 1, -1 forever), "action": status (code, body,
        retry_after) | drop | drop_after_request | cut_body (at, reset) | delay
        (seconds) | stall_body (seconds: headers and half the body, a pause, the
        rest) | html | body (body, code, content_type, headers, content_length) |
        rewrite (set, delete, drop_rows, replace, truncate, headers, content_type,
        content_length)}: see the module docstring."""
        fault = validate_fault({**(fault or {}), **fields})
        with self._lock:
            self._faults.append(fault)

    def faults(self) -> list:
        with self._lock:
            return [dict(f) for f in self._faults]

    def executions(self) -> dict:
        with self._lock:
            return {str(qid): self._paid_runs.get(qid, 0) for qid in sorted(self._queries)}

    def add_query(self, definition: dict):
        """Add or replace a query. Runs of a replaced version stay readable by
        id, but the latest result is looked for among the new version's runs."""
        query = Query(definition)
        now = time.time()
        with self._lock:
            self._queries[query.id] = query
            self._paid_runs.setdefault(query.id, 0)
            run = max(query.pending_seconds, query.run_seconds)
            for k in range(query.prior_runs):
                submitted = now - (query.prior_runs - k) * 3600 - run
                self._new_execution(query, dict(query.parameters), submitted,
                                    query.pending_seconds, query.run_seconds, "medium")

    def settings(self, **changes) -> dict:
        """Change max_page_rows, time_scale, key, verbose or rate_mb_s; returns all settings."""
        checks = {
            "rate_mb_s": lambda v: _non_negative_number(v, "rate_mb_s"),
            "max_page_rows": lambda v: _positive_int(v, "max_page_rows"),
            "time_scale": lambda v: _non_negative_number(v, "time_scale"),
            "key": str,
            "verbose": bool,
        }
        unknown = set(changes) - set(checks)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        values = {name: checks[name](value) for name, value in changes.items()}
        with self._lock:
            for name, value in values.items():
                setattr(self, name, value)
            return {"max_page_rows": self.max_page_rows, "time_scale": self.time_scale,
                    "rate_mb_s": self.rate_mb_s,
                    "verbose": self.verbose}

    def set_state(self, execution_id: str, state: str):
        """Force an execution into a state (any QUERY_STATE_* word) for good."""
        if not isinstance(state, str) or not re.fullmatch(r"QUERY_STATE_[A-Z_]+", state):
            raise ValueError("state must be a QUERY_STATE_* word")
        with self._lock:
            execution = self._executions.get(execution_id)
            if execution is None:
                raise KeyError(f"no execution {execution_id}")
            now = time.time()
            if state == CANCELLED and execution.cancelled_at is None:
                execution.cancelled_at = now
            execution.force(state, now)

    def handle_control(self, method: str, path: str, body: bytes) -> Response:
        name = path[len(CONTROL_PREFIX):]
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return error_response(400, "invalid JSON body")
        actions = {
            ("GET", "log"): self.log,
            ("POST", "reset"): lambda: self.reset() or {"ok": True},
            ("GET", "faults"): self.faults,
            ("POST", "faults"): lambda: self.add_fault(data) or {"ok": True},
            ("GET", "executions"): self.executions,
            ("POST", "queries"): lambda: self.add_query(data) or {"ok": True},
            ("GET", "settings"): self.settings,
            ("POST", "settings"): lambda: self.settings(**data),
            ("POST", "state"): lambda: self.set_state(data.get("execution_id"),
                                                      data.get("state")) or {"ok": True},
        }
        action = actions.get((method, name))
        if action is None:
            return error_response(404, MSG_NOT_FOUND)
        try:
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            return json_response(200, action())
        except (ValueError, TypeError) as e:
            return error_response(400, str(e))
        except KeyError as e:
            return error_response(404, e.args[0])

    # ---- requests, faults and the log

    def make_request(self, method, target, headers, body, default_host) -> ApiRequest:
        split = urlsplit(target)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        url_keys = [value for name, value in pairs if name == "api_key"]
        header_key = headers.get("X-Dune-API-Key")
        key_ok = (header_key is not None and self._key_matches(header_key)) or any(
            self._key_matches(k) for k in url_keys)
        return ApiRequest(
            method=method, path=split.path, query=_redact_query(split.query),
            params=[(n, v) for n, v in pairs if n != "api_key"],
            host=headers.get("Host") or default_host, body=body,
            key_ok=key_ok, key_in_url=bool(url_keys))

    def _key_matches(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.key.encode())

    def take_fault(self, method: str, target: str):
        """The first pending fault matching this request, used up by one."""
        with self._lock:
            for fault in self._faults:
                if fault["match"] not in target:
                    continue
                if fault["method"] is not None and fault["method"] != method:
                    continue
                if fault["count"] > 0:
                    fault["count"] -= 1
                    if fault["count"] == 0:
                        self._faults.remove(fault)
                return dict(fault)
        return None

    def record(self, request: ApiRequest, status, fault=None):
        entry = {"method": request.method, "path": request.path, "query": request.query,
                 "status": status, "key_ok": request.key_ok,
                 "key_in_url": request.key_in_url, "time": time.time()}
        if fault is not None:
            entry["fault"] = fault["action"]
        with self._lock:
            self._log.append(entry)
        if self.verbose:
            target = request.path + ("?" + request.query if request.query else "")
            note = f" (fault: {fault['action']})" if fault else ""
            print(f"fake_dune: {request.method} {target} {status}{note}",
                  file=sys.stderr, flush=True)

    # ---- the API

    def handle_api(self, request: ApiRequest) -> Response:
        if not request.key_ok:
            return error_response(401, MSG_INVALID_KEY)
        method = "GET" if request.method == "HEAD" else request.method
        route = request.path[len(API_BASE):] if request.path.startswith(API_BASE + "/") else None
        for route_method, pattern, handler_name in ROUTES:
            match = pattern.fullmatch(route) if route is not None else None
            if match and method == route_method:
                try:
                    return getattr(self, handler_name)(request, unquote(match[1]))
                except ApiError as e:
                    return e.response
                except Exception:
                    traceback.print_exc()
                    return error_response(500, MSG_INTERNAL)
        return error_response(404, MSG_NOT_FOUND)

    def _route_execute(self, request, qid_text):
        with self._lock:
            query = self._queries.get(int(qid_text))
        if query is None:
            raise ApiError(404, MSG_QUERY_NOT_FOUND)
        if query.archived:
            raise ApiError(403, MSG_ARCHIVED)
        try:
            body = json.loads(request.body) if request.body.strip() else {}
        except ValueError:
            raise ApiError(400, MSG_INVALID_BODY) from None
        if not isinstance(body, dict):
            raise ApiError(400, MSG_INVALID_BODY)
        given = body.get("query_parameters") or {}
        if not isinstance(given, dict):
            raise ApiError(400, MSG_INVALID_BODY)
        unknown = [name for name in given if name not in query.parameters]
        if unknown:
            raise ApiError(400, f"unknown parameters ({', '.join(unknown)})")
        performance = body.get("performance") or "medium"
        if performance not in PERFORMANCE_TIERS:
            raise ApiError(400, f"invalid performance tier ({performance}): "
                                "use medium or large")
        with self._lock:
            scale = self.time_scale
            execution = self._new_execution(
                query, {**query.parameters, **given}, time.time(),
                query.pending_seconds * scale, query.run_seconds * scale, performance)
            self._paid_runs[query.id] = self._paid_runs.get(query.id, 0) + 1
        return json_response(200, {"execution_id": execution.id, "state": PENDING})

    def _route_status(self, request, eid):
        execution = self._find_execution(eid)
        with self._lock:
            return json_response(200, self._status_document(execution, time.time()))

    def _route_cancel(self, request, eid):
        execution = self._find_execution(eid)
        with self._lock:
            execution.cancel(time.time())
        return json_response(200, {"success": True})

    def _route_results_json(self, request, eid):
        execution = self._find_execution(eid)
        return self._results(request, execution, f"{API_BASE}/execution/{eid}/results", False)

    def _route_results_csv(self, request, eid):
        execution = self._find_execution(eid)
        return self._results(request, execution, f"{API_BASE}/execution/{eid}/results/csv", True)

    def _route_latest_json(self, request, qid_text):
        execution, filters = self._find_latest(request, int(qid_text))
        return self._results(request, execution, f"{API_BASE}/query/{int(qid_text)}/results",
                             False, filters)

    def _route_latest_csv(self, request, qid_text):
        execution, filters = self._find_latest(request, int(qid_text))
        return self._results(request, execution, f"{API_BASE}/query/{int(qid_text)}/results/csv",
                             True, filters)

    # ---- route helpers

    def _new_execution(self, query, params, submitted, pending, run, performance):
        with self._lock:
            eid = new_execution_id()
            while eid in self._executions:
                eid = new_execution_id()
            execution = Execution(eid, query, params, submitted, pending, run, performance)
            self._executions[eid] = execution
            self._history.setdefault(query.id, []).append(execution)
            return execution

    def _find_execution(self, eid: str) -> Execution:
        if not re.fullmatch(r"[A-Za-z0-9]+", eid):
            raise ApiError(400, f"The requested execution ID (ID: {eid}) is invalid.")
        with self._lock:
            execution = self._executions.get(eid)
        if execution is None:
            raise ApiError(404, f"The requested execution ID (ID {eid}) was not found.")
        return execution

    def _find_latest(self, request, qid):
        """The latest finished run of the query's current version matching the
        params.<name>=<value> filters, and those filters."""
        filters = [(name, value) for name, value in request.params if name.startswith("params.")]
        now = time.time()
        with self._lock:
            query = self._queries.get(qid)
            if query is None:
                raise ApiError(404, MSG_QUERY_NOT_FOUND)
            best, best_end = None, None
            for execution in self._history.get(qid, []):
                if execution.query is not query:
                    continue
                state, _, ended = execution.timeline(now)
                if state not in STATES_WITH_RESULT:
                    continue
                if any(name[len("params."):] not in execution.params or
                       parameter_text(execution.params[name[len("params."):]]) != value
                       for name, value in filters):
                    continue
                if best is None or ended >= best_end:
                    best, best_end = execution, ended
        if best is None:
            raise ApiError(404, MSG_NO_EXECUTION)
        return best, filters

    def _status_document(self, execution: Execution, now: float) -> dict:
        state, started, ended = execution.timeline(now)
        document = {
            "execution_id": execution.id,
            "query_id": execution.query.id,
            "state": state,
            "is_execution_finished": state in TERMINAL_STATES,
            "submitted_at": rfc3339(execution.submitted),
            "expires_at": rfc3339(execution.submitted + RETENTION_SECONDS),
        }
        if started is not None:
            document["execution_started_at"] = rfc3339(started)
        if ended is not None:
            document["execution_ended_at"] = rfc3339(ended)
        if execution.cancelled_at is not None:
            document["cancelled_at"] = rfc3339(execution.cancelled_at)
        if state == PENDING:
            document["queue_position"] = 1
        if state in STATES_WITH_RESULT:
            document["result_metadata"] = self._metadata(
                execution, started, ended, execution.total_rows, execution.total_bytes())
        if state == FAILED:
            document["error"] = error_document(execution.query.error)
        finished_with_result = state in STATES_WITH_RESULT
        document["execution_cost_credits"] = (
            (20 if execution.performance == "large" else 10) if finished_with_result else 0)
        document["max_inflight_interactive_executions"] = 3
        document["max_inflight_interactive_reached"] = False
        return document

    @staticmethod
    def _metadata(execution, started, ended, row_count, result_bytes) -> dict:
        query = execution.query
        started = started if started is not None else execution.submitted
        ended = ended if ended is not None else started
        return {
            "column_names": list(query.column_names),
            "column_types": list(query.column_types),
            "row_count": row_count,
            "result_set_bytes": result_bytes,
            "total_row_count": execution.total_rows,
            "total_result_set_bytes": execution.total_bytes(),
            "datapoint_count": row_count * len(query.columns),
            "pending_time_millis": round((started - execution.submitted) * 1000),
            "execution_time_millis": round((ended - started) * 1000),
        }

    def _page_bounds(self, request) -> tuple:
        offset = _int_parameter(request, "offset")
        limit = _int_parameter(request, "limit")
        with self._lock:
            most = self.max_page_rows
        return offset, most if limit == 0 else min(limit, most)

    def _results(self, request, execution, link_path, as_csv, filters=()) -> Response:
        """One page of a result, as JSON or CSV, with links to the next page."""
        now = time.time()
        with self._lock:
            document = self._status_document(execution, now)
            _, started, ended = execution.timeline(now)
        state = document["state"]
        allow_partial = request.param("allow_partial_results")
        if state == PARTIAL and (allow_partial or "").lower() != "true":
            raise ApiError(400, MSG_PARTIAL)
        if state not in STATES_WITH_RESULT:
            if as_csv:
                return json_response(409, {"error": MSG_CSV_NOT_READY, "errorDetails": None,
                                           "state": state})
            return json_response(200, document)

        offset, limit = self._page_bounds(request)
        memo_key = None
        if execution.query.memo_pages:
            memo_key = (execution.id, as_csv, offset, limit, request.host, link_path,
                        request.param("allow_partial_results"), tuple(filters))
            with self._lock:
                memo = self._page_memo.get(memo_key)
            if memo is not None:
                return memo
        response = self._page(request, execution, link_path, as_csv, filters, document,
                              offset, limit, started, ended)
        if memo_key is not None:
            with self._lock:
                self._page_memo[memo_key] = response
        return response

    def _page(self, request, execution, link_path, as_csv, filters, document, offset, limit,
              started, ended) -> Response:
        allow_partial = request.param("allow_partial_results")
        total = execution.total_rows
        stop = min(total, offset + limit)
        rows = execution.query.page(execution.params, offset, stop) if offset < stop else []
        rows = _mark_run(execution, rows)
        next_offset = stop if stop < total else None
        next_uri = None
        if next_offset is not None:
            link = [("limit", limit), ("offset", next_offset)]
            if allow_partial is not None:
                link.append(("allow_partial_results", allow_partial))
            link.extend(filters)
            next_uri = f"http://{request.host}{link_path}?{urlencode(link)}"

        query = execution.query
        if as_csv:
            headers = []
            if next_offset is not None:
                headers = [("x-dune-next-offset", str(next_offset)), ("x-dune-next-uri", next_uri)]
            body = csv_bytes(query.column_names, rows, "<nil>" if query.nil_style else "")
            return Response(200, body, "text/csv", headers)

        # Dune does not promise the key order inside a row: reverse it to prove it.
        reversed_names = query.column_names[::-1]
        objects = [dict(zip(reversed_names, row[::-1])) for row in rows]
        page_bytes = len(json_bytes(rows)) - 2 - max(0, len(rows) - 1)
        document["result"] = {
            "rows": objects,
            "metadata": self._metadata(execution, started, ended, len(rows), page_bytes),
        }
        if next_offset is not None:
            document["next_offset"] = next_offset
            document["next_uri"] = next_uri
        return json_response(200, document)


def _mark_run(execution, rows) -> list:
    """Generated rows carry their run in the "name" column ("name_7_r3Q9Z"),
    so that results of different runs of a query differ."""
    query = execution.query
    if query.rows is not None or "name" not in query.column_names:
        return rows
    at = query.column_names.index("name")
    tag = "_r" + execution.id[-4:]
    return [row[:at] + [f"{row[at]}{tag}" if isinstance(row[at], str) else row[at]] + row[at + 1:]
            for row in rows]


def _int_parameter(request, name) -> int:
    """A non-negative integer query parameter; absent or empty is 0."""
    text = request.param(name, "")
    if text == "":
        return 0
    if not text.isdigit():
        raise ApiError(400, f"invalid {name}: {text}")
    return int(text)


def _redact_query(query: str) -> str:
    """The raw query string with the value of any api_key replaced."""
    if "api_key" not in query:
        return query
    parts = []
    for part in query.split("&"):
        if unquote(part.split("=", 1)[0].replace("+", " ")) == "api_key":
            part = "api_key=REDACTED"
        parts.append(part)
    return "&".join(parts)


# --------------------------------------------------------------------------
# HTTP plumbing

class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, fake: FakeDune):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.fake = fake
        self._connections = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self):
        # HTTPServer.server_bind would ask DNS for the host's name: skip that.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client went away: not our problem
        super().handle_error(request, client_address)

    def track(self, connection, open_: bool):
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self):
        """End idle keep-alive connections, so that stop() leaves nothing behind."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm the
    # second waits for the ACK of the first, which a client on a kept-alive
    # connection delays by 40 ms (delayed ACK). Real servers send them
    # together; without this, every request after a connection's first took
    # ~45 ms here (curl, one request on a fresh connection: 0.5 ms).
    disable_nagle_algorithm = True
    server_version = "fake-dune/1.0"
    timeout = 120  # idle keep-alive connections end after this

    def version_string(self):
        return self.server_version

    def setup(self):
        super().setup()
        self.server.track(self.connection, True)

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def finish(self):
        try:
            super().finish()
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self.server.track(self.connection, False)

    def log_request(self, code="-", size="-"):
        pass  # FakeDune.record() logs requests

    def log_message(self, format, *args):
        if self.server.fake.verbose:
            sys.stderr.write(f"fake_dune: {self.address_string()} {format % args}\n")

    def _dispatch(self):
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(error_response(400, "bad request framing"))
            return
        if urlsplit(self.path).path.startswith(CONTROL_PREFIX):
            fake = self.server.fake
            self._send(fake.handle_control(self.command, urlsplit(self.path).path, body))
        else:
            self._serve_api(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _serve_api(self, body: bytes):
        fake = self.server.fake
        default_host = f"{self.server.server_name}:{self.server.server_port}"
        request = fake.make_request(self.command, self.path, self.headers, body, default_host)
        fault = fake.take_fault(self.command, self.path)
        action = fault["action"] if fault else None
        if action == "delay":
            time.sleep(fault["seconds"])
        if action == "drop":
            response = None
        elif action in ("status", "html"):
            response = fault_response(fault)
        elif action == "body":
            response = body_response(fault)
        else:
            response = fake.handle_api(request)
        if action == "rewrite":
            try:
                response = rewrite_response(response, fault)
            except (ValueError, TypeError) as e:  # the test asked for the impossible
                response = error_response(500, f"fake: {e}")
        fake.record(request, response.status if response else None, fault)
        if action in ("drop", "drop_after_request"):
            self.close_connection = True  # hang up without a word
            return
        self._send(response, cut_body=action == "cut_body",
                   stall=fault["seconds"] if action == "stall_body" else 0,
                   cut_at=fault.get("at") if action == "cut_body" else None,
                   reset=action == "cut_body" and fault.get("reset", False))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit() or int(length) > MAX_REQUEST_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise ValueError("bad chunk size") from None
            if size == 0:
                break
            if len(body) + size > MAX_REQUEST_BODY:
                raise ValueError("body too large")
            body += self.rfile.read(size)
            self.rfile.readline(1024)
        while self.rfile.readline(1024).strip():  # trailer fields
            pass
        return bytes(body)

    def _send(self, response: Response, cut_body=False, stall=0, cut_at=None, reset=False):
        declared = response.declared_length
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body) if declared is None else declared))
        for name, value in response.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if declared is not None and declared != len(response.body):
            self.close_connection = True  # the stream is out of step: end it after the body
        if cut_body:
            self.wfile.write(response.body[:len(response.body) // 2 if cut_at is None else cut_at])
            self.close_connection = True
            if reset:
                self._reset()
            return
        rate = self.server.fake.rate_mb_s * 1e6
        if rate:
            start, chunk = time.monotonic(), 256 * 1024
            for at in range(0, len(response.body), chunk):
                ahead = start + at / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                self.wfile.write(response.body[at:at + chunk])
            return
        if stall:
            half = len(response.body) // 2
            self.wfile.write(response.body[:half])
            self.wfile.flush()
            time.sleep(stall)
            self.wfile.write(response.body[half:])
            return
        self.wfile.write(response.body)

    def _reset(self):
        """Ends the connection with a TCP RST (SO_LINGER 0), not a FIN."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())
        except OSError:
            pass


# --------------------------------------------------------------------------
# Command line

def load_scenario(path: str) -> list:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict):
        data = data.get("queries")
    if not isinstance(data, list):
        raise ValueError("a scenario is a JSON list of query definitions")
    return data


def write_port_file(path: str, port: int):
    temporary = f"{path}.tmp.{os.getpid()}"
    with open(temporary, "w", encoding="ascii") as f:
        f.write(f"{port}\n")
    os.replace(temporary, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="A local fake of the Dune API v1.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--key", default="test-key", help="the API key to require")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--scenario", help="JSON file of query definitions")
    parser.add_argument("--max-page-rows", type=int, default=1000)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args(argv)

    # Block the stop signals before any thread starts (threads inherit the
    # mask); a signal that comes early waits for sigwait() below.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        queries = load_scenario(args.scenario) if args.scenario else None
        fake = FakeDune(queries=queries, key=args.key, host=args.host, port=args.port,
                        max_page_rows=args.max_page_rows, time_scale=args.time_scale,
                        verbose=args.verbose)
    except (OSError, ValueError) as e:
        print(f"fake_dune: {e}", file=sys.stderr)
        return 2

    try:
        port = fake.start()
    except OSError as e:
        print(f"fake_dune: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    if args.port_file:
        write_port_file(args.port_file, port)
    print(f"PORT {port}", flush=True)
    signal.sigwait(stop_signals)
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
