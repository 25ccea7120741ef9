"""Responses that break our assumptions about the APIs: malformed or deeply
nested JSON, HTML, unknown states, fields missing, null or of the wrong type,
numbers no double holds, pages that hold fewer rows than they say, bodies
shorter than their Content-Length, connections reset mid-body, stalls, and
links or redirects to another host.

The property: a reader gets every byte of the result (the same bytes an
undisturbed run gives, compared with what the fake sent) or an error (EIO, or
the errno of the README's table); never a short or wrong file that looks complete. The
daemon survives, and the mount keeps working once the API behaves again.

The faults come from the fakes' switches (fake_dune.py's docstring): body
(a reply of our own), rewrite (the real reply, changed: raw JSON at a path,
rows dropped, text replaced, truncated, headers, a lying Content-Length) and
cut_body with reset (a TCP RST mid-body). Each case runs on a result of its
own, made by a run started straight at the API (run_elsewhere), so that the
cases of a test do not share a cache entry.
"""
import errno
import json
import os
import socket
import threading
import time

import pytest

from conftest import (api_get, execute, fake_latest_csv, kind_of, requests_for, run_elsewhere,
                      wait_for)

DEEP = 100_000  # levels of nesting

# A query whose literal rows carry markers; a rewrite replaces each marker with
# raw JSON text no double holds (and, in CSV, with the same text as a field).
NUMBERS = {
    "@N1@": "1e400", "@N2@": "-1e400", "@N3@": "1E+400", "@N4@": "1e-400",
    "@N5@": "18446744073709551617", "@N6@": "-18446744073709551617",  # 2^64 + 1
    "@N7@": "-0", "@N8@": "-0.0", "@N9@": "0.0000000000000000000000000000000000000001",
    "@N10@": "123456789012345678901234567890123456789",
    "@N11@": "9" * 5000,
    "@N12@": "1.00000000000000000000000000000000000001",
    "@N13@": '[1e400,{"k":-0,"z":null,"big":18446744073709551617}]',
}
NUMBERS_QUERY = {
    "id": 3001, "name": "hostile numbers",
    "columns": [{"name": "id", "type": "integer"}, {"name": "a", "type": "double"},
                {"name": "b", "type": "uint256"}, {"name": "c", "type": "varchar"},
                {"name": "d", "type": "varchar"}],
    "rows": [[1, "@N1@", "@N5@", "plain", "@N13@"],
             [2, "@N2@", "@N6@", None, "x"],
             [3, "@N3@", "@N10@", "comma, inside", "@N7@"],
             [4, "@N4@", "@N11@", 'quote "q"', "@N8@"],
             [5, "@N9@", "@N12@", "two\nlines", None],
             [6, 0.5, "1", "", "@N1@"],
             [7, None, None, None, None]],
    "pending_seconds": 0, "run_seconds": 0, "prior_runs": 0,
}
# 25 generated rows (notes with commas, quotes, CR/LF), finished at once;
# dune: pages of 10 rows (the hostile_fake fixture), so 3 pages.
PAGED_QUERY = {"id": 3002, "name": "three pages", "generate_rows": 25,
               "pending_seconds": 0, "run_seconds": 0, "prior_runs": 0}
PAGE_ROWS = 10
# Runs that take a while: waiting readers poll their status (times 0.2).
SLOW_QUERIES = [{"id": qid, "name": f"slow {qid}", "generate_rows": 4,
                 "pending_seconds": 2, "run_seconds": 5, "prior_runs": 0}
                for qid in (3101, 3102, 3103, 3104)]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def outcome(path, timeout=5):
    """The bytes of a file read to EOF, or the errno its open or read failed
    with, or HUNG when no answer came in time (the read goes on in a thread
    until the unmount at the test's end ends it)."""
    got = []

    def reader():
        try:
            got.append(read(path))
        except OSError as e:
            got.append(e.errno)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    return got[0] if got else HUNG


HUNG = "no answer in time"


def describe(value):
    if isinstance(value, int):
        return errno.errorcode.get(value, str(value))
    if isinstance(value, str):
        return value
    return f"{len(value)} bytes {value[:60]!r}..."


def expect_eio(path, bad, label):
    """Reads path whole; notes in bad, under label, what came if not EIO."""
    got = outcome(path)
    if got != errno.EIO:
        bad.append(f"{label}: {describe(got)}")
    return got


def loads(data):
    """JSON with numbers kept as their text (no 4300-digit limit, no rounding)."""
    return json.loads(data, parse_int=str, parse_float=str, parse_constant=str)


def redash(fake):
    return kind_of(fake) == "redash"


@pytest.fixture
def hostile_fake(fake):
    for definition in [NUMBERS_QUERY, PAGED_QUERY] + SLOW_QUERIES:
        fake.add_query(definition)
    if not redash(fake):
        fake.settings(max_page_rows=PAGE_ROWS)
    return fake


# ---- where the faults go, and what the API sends -----------------------------

def status_match(fake, eid):
    return f"/api/jobs/{eid}" if redash(fake) else f"/execution/{eid}/status"


def results_match(fake, eid, fmt):
    """A fault match for the requests of one result (fmt: csv or json; ndjson
    is made from json), every page of it."""
    if redash(fake):
        return f"/{fake.result_id(eid)}.{fmt}"
    return f"/execution/{eid}/results" + ("/csv?" if fmt == "csv" else "?")


def page_match(fake, eid, fmt, page):
    """Dune: one page after the first (page 1 is the only one without an offset)."""
    assert page >= 2 and not redash(fake)
    return results_match(fake, eid, fmt) + f"limit={PAGE_ROWS}&offset={(page - 1) * PAGE_ROWS}&"


def api_pages(fake, eid, fmt):
    """The bodies the API sends for a result now, faults included, page by page
    (redash: one document). The same requests execfs makes."""
    if redash(fake):
        return [api_get(fake, f"{fake.base_url}/api/query_results/{fake.result_id(eid)}.{fmt}")[0]]
    url = (f"{fake.base_url}/execution/{eid}/results{'/csv' if fmt == 'csv' else ''}"
           "?limit=32000&allow_partial_results=true")
    pages = []
    while url:
        body, headers = api_get(fake, url)
        pages.append(body)
        if fmt == "csv":
            url = {k.lower(): v for k, v in headers.items()}.get("x-dune-next-uri")
        else:
            url = loads(body).get("next_uri")
    return pages


def expected_csv(fake, eid):
    pages = api_pages(fake, eid, "csv")
    return pages[0] + b"".join(p.split(b"\n", 1)[1] for p in pages[1:])


def rows_path(fake):
    return ["query_result", "data", "rows"] if redash(fake) else ["result", "rows"]


def expected_rows(fake, eid):
    """The bytes of every row, as the API sent them."""
    return [row for page in api_pages(fake, eid, "json") for row in raw_rows(page, rows_path(fake))]


def expected_ndjson(fake, eid):
    return b"".join(row + b"\n" for row in expected_rows(fake, eid))


def check_json_file(fake, eid, data):
    """results.json: redash, the document as sent; dune, one valid document
    whose rows are the pages' rows, byte for byte."""
    if redash(fake):
        return data == api_pages(fake, eid, "json")[0]
    try:
        loads(data)
    except ValueError:
        return False
    rows = expected_rows(fake, eid)
    return raw_rows(data, ["result", "rows"]) == rows and \
        b'"rows":[' + b",".join(rows) + b"]" in data


def fresh_run(fake, qid=PAGED_QUERY["id"]):
    """A finished run this mount has never heard of."""
    eid = run_elsewhere(fake, qid)
    if redash(fake):
        wait_for(lambda: fake.result_id(eid))
    return eid


def healthy(mnt, fake):
    """The daemon lives and the mount serves a result right."""
    assert mnt.proc.poll() is None, f"execfs died: {mnt.log()[-2000:]}"
    assert read(mnt.p("queries", "1001", "latest.csv")) == fake_latest_csv(fake, 1001)


# ---- a raw JSON scanner: spans, so that bytes can be compared as sent ----------

def _ws(b, i):
    while i < len(b) and b[i] in b" \t\r\n":
        i += 1
    return i


def _value_end(b, i):
    """Where the JSON value starting at b[i] ends (well-formed input)."""
    if b[i] == 0x22:
        i += 1
        while b[i] != 0x22:
            i += 2 if b[i] == 0x5C else 1
        return i + 1
    if b[i] in b"{[":
        depth, quoted = 0, False
        while True:
            c = b[i]
            if quoted:
                if c == 0x5C:
                    i += 2
                    continue
                quoted = c != 0x22
            elif c == 0x22:
                quoted = True
            elif c in b"{[":
                depth += 1
            elif c in b"}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
    while i < len(b) and b[i] not in b",]} \t\r\n":
        i += 1
    return i


def _items(b, i):
    """(key or None, start, end) of each member of the object or array at b[i]."""
    is_object = b[i] == 0x7B
    i = _ws(b, i + 1)
    while b[i] not in b"}]":
        key = None
        if is_object:
            end = _value_end(b, i)
            key = json.loads(b[i:end])
            i = _ws(b, _ws(b, end) + 1)  # past the colon
        end = _value_end(b, i)
        yield key, i, end
        i = _ws(b, end)
        if b[i] == 0x2C:
            i = _ws(b, i + 1)


def span(b, path):
    start, end = _ws(b, 0), None
    for name in path:
        for key, s, e in _items(b, start):
            if key == name:
                start, end = s, e
                break
        else:
            raise KeyError(name)
    return start, end


def raw_rows(b, path):
    start, _ = span(b, path)
    return [b[s:e] for _, s, e in _items(b, start)]


# ---- a listener that must hear nothing ------------------------------------------

class Recorder:
    """A plain TCP listener that keeps every byte sent to it, answering 500."""

    def __init__(self, host):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.host, self.port = self.sock.getsockname()
        self.connections = 0
        self.received = b""
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
                except OSError:
                    pass
                self.received += data

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture
def recorders():
    made = [Recorder("127.0.0.1"), Recorder("127.0.0.2")]  # same host, another host
    yield made
    for r in made:
        r.close()


def nothing_heard(fake, recs):
    for r in recs:
        assert r.connections == 0 and r.received == b"", \
            f"{r.host}:{r.port} was asked: {r.received[:300]!r}"
        assert fake.key.encode() not in r.received


# ---- malformed JSON ---------------------------------------------------------------

def first_row_end(fake, eid, page):
    """Where the first row of a JSON result page ends: a cut there leaves a
    body that ends with a closing brace."""
    body = api_pages(fake, eid, "json")[page - 1]
    _, _, end = next(_items(body, span(body, rows_path(fake))[0]))
    return end


MALFORMED = {
    "truncated": lambda fake, eid, page: {"truncate": -7},
    "truncated after a row": lambda fake, eid, page: {"truncate": first_row_end(fake, eid, page)},
    "garbage": lambda fake, eid, page: {"replace": [['"rows":[', '"rows":[,}{']]},
    "not JSON at all": lambda fake, eid, page: {"replace": [['{"', 'x{"']]},
    "nested 100000 deep": lambda fake, eid, page: {"replace": [['"rows":[', '"rows":[' + "[" * DEEP]]},
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_json_result_is_eio(hostile_fake, mnt, kind):
    """A JSON result page (dune: page 1 or page 2; redash: the document) that
    is cut short, holds garbage or nests 100000 deep: results.json and
    results.ndjson fail with EIO, and a later read, the API well again, is right."""
    fake = hostile_fake
    bad = []
    for page in [1] if redash(fake) else [1, 2]:
        for fmt in ("json", "ndjson"):
            eid = fresh_run(fake)
            match = results_match(fake, eid, "json") if page == 1 else \
                page_match(fake, eid, "json", page)
            fake.add_fault(match=match, action="rewrite", count=-1,
                           **MALFORMED[kind](fake, eid, page))
            expect_eio(mnt.p("executions", eid, f"results.{fmt}"), bad, f"page {page}, results.{fmt}")
            fake.reset()
            data = outcome(mnt.p("executions", eid, f"results.{fmt}"))
            ok = isinstance(data, bytes) and (check_json_file(fake, eid, data) if fmt == "json"
                                              else data == expected_ndjson(fake, eid))
            if not ok:
                bad.append(f"page {page}, results.{fmt}, read again: {describe(data)}")
    assert not bad, f"{kind}: " + "; ".join(bad)
    healthy(mnt, fake)


STATUS_MALFORMED = {
    "truncated": {"truncate": -5},
    "garbage": {"replace": [['"', "'"]]},
    "a list, not an object": {"replace": [["{", "[{"], ["}", "}]"]]},
    "nested 100000 deep": {"set": {"x": "[" * DEEP}},
    "nested 100000 deep, balanced": {"set": {"x": "[" * DEEP + "]" * DEEP}},
    "empty": {"truncate": 0},
}


def test_malformed_status_document(hostile_fake, mnt):
    """The status (redash: job) document of an execution the mount looks up is
    malformed: the lookup fails with EIO (no crash); a read right after it
    asks again (the failure is not served again) and gets the result."""
    fake = hostile_fake
    bad = []
    for name, change in STATUS_MALFORMED.items():
        eid = fresh_run(fake)
        fake.add_fault(match=status_match(fake, eid), action="rewrite", count=1, **change)
        expect_eio(mnt.p("executions", eid, "results.csv"), bad, name)
        again = outcome(mnt.p("executions", eid, "results.csv"))  # at once: asks again
        if again != expected_csv(fake, eid):
            bad.append(f"{name}, read again: {describe(again)}")
    assert not bad, "; ".join(bad)
    healthy(mnt, fake)


def test_malformed_status_while_a_reader_waits(hostile_fake, mnt):
    """A waiting reader's polls get garbage, HTML, a deep nest or a body cut
    short, twice, then the truth: the reader gets the whole result or EIO, and
    a later read gets the result."""
    fake = hostile_fake
    faults = [dict(action="rewrite", truncate=-3), dict(action="html"),
              dict(action="rewrite", set={"x": "[" * DEEP}),
              dict(action="body", body='{"state": "QUERY_STATE_COMPL')]
    eids, got = [], {}
    for query, fault in zip(SLOW_QUERIES, faults):
        eid = execute(mnt, query["id"])
        fake.add_fault(match=status_match(fake, eid), count=2, **fault)
        eids.append(eid)

    def reader(eid):
        got[eid] = outcome(mnt.p("executions", eid, "results.csv"))

    threads = [threading.Thread(target=reader, args=(eid,)) for eid in eids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    bad = []
    for eid, fault in zip(eids, faults):
        want = expected_csv(fake, eid)
        if got.get(eid) not in (want, errno.EIO):
            bad.append(f"{fault}: {describe(got.get(eid, b'(still waiting)'))}")
        if read(mnt.p("executions", eid, "results.csv")) != want:
            bad.append(f"{fault}: wrong result once the API is well")
    assert not bad, "; ".join(bad)
    healthy(mnt, fake)


def test_status_broken_for_good_ends_a_waiting_read(hostile_fake, mnt):
    """Every status reply of a running execution is garbage: a waiting read
    ends with EIO ("broken response", README "Errors"), it does not wait for ever."""
    fake = hostile_fake
    eid = execute(mnt, SLOW_QUERIES[0]["id"])
    fake.add_fault(match=status_match(fake, eid), action="rewrite", truncate=-3, count=-1)
    got = outcome(mnt.p("executions", eid, "results.csv"), timeout=10)
    assert got == errno.EIO, f"after 10 s of broken status replies: {describe(got)}"
    # POLL_FAILURES_MAX: three failed polls in a row, the first begun after the read came
    assert len(requests_for(fake, "status", eid)) == 3
    fake.reset()
    assert read(mnt.p("executions", eid, "results.csv")) == expected_csv(fake, eid)


def test_one_500_while_a_read_waits_is_a_failed_poll(hostile_fake, mnt):
    """A 500 on the status of a running run (redash: also its answer for a
    job it does not know) is one failed poll: the waiting read goes on and
    gets the result, not ENOENT at once."""
    fake = hostile_fake
    eid = execute(mnt, SLOW_QUERIES[1]["id"])
    got = []
    t = threading.Thread(target=lambda: got.append(outcome(mnt.p("executions", eid, "results.csv"),
                                                           timeout=20)))
    t.start()
    time.sleep(0.3)
    fake.add_fault(match=status_match(fake, eid), action="status", code=500)
    t.join(25)
    assert got and isinstance(got[0], bytes), describe(got[0] if got else "still waiting")
    assert got == [expected_csv(fake, eid)]
    assert any(e.get("fault") == "status" for e in requests_for(fake, "status", eid))
    assert "HTTP 500" in mnt.log()


def test_malformed_execute_reply_is_eio_and_sent_once(hostile_fake, mnt):
    """The reply to the request that starts a run is malformed, HTML, nests
    deep or names an id that is no id: the write fails with EIO, the run is
    asked for once, and `last` names no such id."""
    fake = hostile_fake
    qid = PAGED_QUERY["id"]
    execute_match = {"match": f"/api/queries/{qid}/results", "method": "POST"} if redash(fake) \
        else {"match": f"/query/{qid}/execute"}
    id_field = "job.id" if redash(fake) else "execution_id"
    replies = {
        "truncated": dict(action="rewrite", truncate=-2),
        "garbage": dict(action="rewrite", replace=[[":", "::"]]),
        "HTML": dict(action="html"),
        "nested 100000 deep": dict(action="rewrite", set={"x": "[" * DEEP}),
        "id null": dict(action="rewrite", set={id_field: "null"}),
        "id 1e400": dict(action="rewrite", set={id_field: "1e400"}),
        "id a path": dict(action="rewrite", set={id_field: '"../../etc"'}),
        "id too long": dict(action="rewrite", set={id_field: json.dumps("A" * 65)}),
        "id empty": dict(action="rewrite", set={id_field: '""'}),
        "cut mid-body": dict(action="cut_body", reset=True),
        "shorter than its Content-Length": dict(action="rewrite", content_length=4096),
    }
    if redash(fake):
        replies["job null"] = dict(action="rewrite", set={"job": "null"})
        replies["job a list"] = dict(action="rewrite", set={"job": "[]"})
    bad = []
    for name, fault in replies.items():
        before = len(requests_for(fake, "execute", qid))
        fake.add_fault(**execute_match, **fault)
        try:
            execute(mnt, qid)
            got = "success"
        except OSError as e:
            got = errno.errorcode.get(e.errno, e.errno)
        sent = len(requests_for(fake, "execute", qid)) - before
        if got != "EIO" or sent != 1:
            bad.append(f"{name}: {got}, {sent} requests")
        last = os.path.join(mnt.p("queries", str(qid)), "last")
        if os.path.islink(last) and "etc" in os.readlink(last):
            bad.append(f"{name}: last -> {os.readlink(last)}")
    assert not bad, "; ".join(bad)
    eid = execute(mnt, qid)  # the mount still starts runs
    assert read(mnt.p("executions", eid, "results.csv")) == expected_csv(fake, eid)
    healthy(mnt, fake)


# ---- HTML where JSON was expected -------------------------------------------------

def test_html_instead_of_a_result(hostile_fake, mnt):
    """A proxy's HTML page (200, text/html) in place of a result: results.csv
    (dune: page 1 or page 2), .json and .ndjson fail with EIO, never an HTML
    page in the file; redash's CSV case is in test_redash.py."""
    fake = hostile_fake
    cases = [("json", 1, "json"), ("json", 1, "ndjson")]
    if not redash(fake):
        cases += [("csv", 1, "csv"), ("csv", 2, "csv"), ("json", 2, "json")]
    bad = []
    for fmt, page, ext in cases:
        eid = fresh_run(fake)
        match = results_match(fake, eid, fmt) if page == 1 else page_match(fake, eid, fmt, page)
        fake.add_fault(match=match, action="html", count=-1)
        expect_eio(mnt.p("executions", eid, f"results.{ext}"), bad, f"results.{ext}, page {page}")
        fake.reset()
    assert not bad, "; ".join(bad)
    healthy(mnt, fake)


def test_html_instead_of_a_status_or_query_document(hostile_fake, mnt):
    """HTML in place of the status (job) document of a lookup, and (redash) of
    the query document that execute reads the parameters from: EIO."""
    fake = hostile_fake
    eid = fresh_run(fake)
    fake.add_fault(match=status_match(fake, eid), action="html")
    assert outcome(mnt.p("executions", eid, "results.csv")) == errno.EIO
    time.sleep(0.01)  # a read at once is test_malformed_status_document's
    assert read(mnt.p("executions", eid, "results.csv")) == expected_csv(fake, eid)
    if redash(fake):
        qid = PAGED_QUERY["id"]
        before = len(requests_for(fake, "execute", qid))
        fake.add_fault(match=f"/api/queries/{qid}", method="GET", action="html")
        with pytest.raises(OSError) as e:
            execute(mnt, qid)
        assert e.value.errno == errno.EIO
        assert len(requests_for(fake, "execute", qid)) == before  # no run started on a guess
    healthy(mnt, fake)


def test_html_instead_of_a_cancel_reply(hostile_fake, mnt):
    """The cancel request is answered with a proxy's HTML page: the write to
    `cancel` fails with EIO (redash answers `null`, dune {"success": true};
    a page from something else says nothing about the run)."""
    fake = hostile_fake
    eid = execute(mnt, SLOW_QUERIES[0]["id"])
    fake.add_fault(match=f"/api/jobs/{eid}" if redash(fake) else f"/execution/{eid}/cancel",
                   method="DELETE" if redash(fake) else "POST", action="html")
    with pytest.raises(OSError) as e:
        with open(mnt.p("executions", eid, "cancel"), "w") as f:
            f.write("1\n")
    assert e.value.errno == errno.EIO
    healthy(mnt, fake)


# ---- odd fields in status and job documents -------------------------------------

DUNE_STATUS_KEYS = ["execution_id", "query_id", "state", "is_execution_finished", "submitted_at",
                    "expires_at", "execution_started_at", "execution_ended_at", "result_metadata",
                    "execution_cost_credits", "max_inflight_interactive_executions",
                    "max_inflight_interactive_reached", "queue_position", "error"]
REDASH_JOB_KEYS = ["id", "updated_at", "status", "error", "result", "query_result_id"]


def status_variants(fake, other_rid):
    """Status documents with fields that are missing, null, of the wrong type,
    unknown or out of any number's range: a rewrite of the real one each."""
    if redash(fake):
        variants = {f"status {text}": {"job.status": text} for text in
                    ("99", "null", '"x"', "true", "[3]", "{}", "1e400", "-1e400",
                     "18446744073709551617", "-0", "3.5", "1" + "0" * 400)}
        variants.update({
            "id null": {"job.id": "null"}, "id 1e400": {"job.id": "1e400"},
            "id a path": {"job.id": '"../../etc"'},
            "result id a path": {"job.query_result_id": '"../x"', "job.result": '"../x"'},
            "result id 1e400": {"job.query_result_id": "1e400", "job.result": "1e400"},
            "result id 2^64+1": {"job.query_result_id": "18446744073709551617"},
            "result id -0": {"job.query_result_id": "-0"},
            "result id long digits": {"job.query_result_id": "9" * 400},
            # rounds to another result's id
            "result id a fraction": {"job.query_result_id": f"{other_rid}.4"},
            "result id a negative": {"job.query_result_id": "-5", "job.result": "-5"},
            "updated_at odd": {"job.updated_at": "1e400"},
            "error a number": {"job.error": "42"},
            "nulls everywhere": {f"job.{k}": "null" for k in REDASH_JOB_KEYS},
            "job null": {"job": "null"}, "job a list": {"job": "[]"}, "job empty": {"job": "{}"},
        })
        return {name: {"set": change} for name, change in variants.items()}
    variants = {f"state {text}": {"state": text} for text in
                ('"QUERY_STATE_SOMETHING_NEW"', '"query_state_completed"', "3", "null",
                 '["QUERY_STATE_COMPLETED"]', "1e400")}
    variants.update({
        "finished flag a string": {"is_execution_finished": '"yes"'},
        "execution_id another": {"execution_id": '"01AAAAAAAAAAAAAAAAAAAAAAAA"'},
        "execution_id 1e400": {"execution_id": "1e400"},
        "query_id a path": {"query_id": '"../../etc"'},
        "query_id 1e400": {"query_id": "1e400"},
        "query_id 2^64+1": {"query_id": "18446744073709551617"},
        "query_id -0": {"query_id": "-0"},
        "query_id a fraction": {"query_id": f"{PAGED_QUERY['id']}.7"},
        "query_id long digits": {"query_id": "1" * 400},
        "times odd": {"execution_ended_at": "1e400", "submitted_at": "null", "expires_at": "[]",
                      "execution_started_at": '"yesterday"'},
        "metadata odd": {"result_metadata.total_row_count": "1e400",
                         "result_metadata.row_count": "18446744073709551617",
                         "result_metadata.column_names": "null"},
        "error a number": {"error": "42"},
        "queue_position 1e400": {"queue_position": "1e400"},
        "nulls everywhere": {k: "null" for k in DUNE_STATUS_KEYS},
    })
    out = {name: {"set": change} for name, change in variants.items()}
    out["state missing"] = {"delete": ["state"]}
    out["everything missing"] = {"delete": DUNE_STATUS_KEYS}
    return out


def test_odd_fields_in_status_documents(hostile_fake, mnt):
    """Each odd status document answers a lookup, then the API is well again:
    the first read gets the whole result or EIO, never another result; the
    next read gets the result; `query`, when there, names the right query."""
    fake = hostile_fake
    other_rid = fake.latest_result_id(1001) if redash(fake) else None
    variants = status_variants(fake, other_rid)
    eids = {name: fresh_run(fake) for name in variants}
    for name, change in variants.items():
        fake.add_fault(match=status_match(fake, eids[name]), action="rewrite", count=1, **change)
    got = {}

    def reader(name):
        got[name] = outcome(mnt.p("executions", eids[name], "results.csv"))

    threads = [threading.Thread(target=reader, args=(name,)) for name in variants]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    bad = []
    for name, eid in eids.items():
        want = expected_csv(fake, eid)
        if got.get(name) not in (want, errno.EIO, errno.ENOENT):
            bad.append(f"{name}: {describe(got.get(name, b'(still waiting)'))}")
        again = outcome(mnt.p("executions", eid, "results.csv"))
        if again != want:
            bad.append(f"{name}, read again: {describe(again)}")
        link = mnt.p("executions", eid, "query")
        if os.path.islink(link) and os.readlink(link) != f"../../queries/{PAGED_QUERY['id']}":
            bad.append(f"{name}: query -> {os.readlink(link)}")
    assert not bad, "; ".join(bad)
    healthy(mnt, fake)


def test_unknown_state_is_not_final(hostile_fake, mnt):
    """An unknown state (dune: a new QUERY_STATE_ word; redash: status 6, 7, 99)
    is not final: the read waits, `status` says pending or running (a word of
    the known list), and the result comes once a known state does."""
    fake = hostile_fake
    eid = fresh_run(fake)
    change = {"job.status": "99"} if redash(fake) else \
        {"state": '"QUERY_STATE_PAUSED"', "is_execution_finished": "false"}
    fake.add_fault(match=status_match(fake, eid), action="rewrite", count=-1, set=change)
    got = []
    t = threading.Thread(target=lambda: got.append(outcome(mnt.p("executions", eid, "results.csv"))))
    t.start()
    time.sleep(1.0)
    assert t.is_alive() and not got  # still waiting: not a final state
    word = read(mnt.p("executions", eid, "status")).decode().strip()
    assert word in ("pending", "running"), word
    fake.reset()
    t.join(15)
    assert got == [expected_csv(fake, eid)]
    assert read(mnt.p("executions", eid, "status")) == b"success\n"


@pytest.mark.backends("dune")
def test_unknown_state_of_a_finished_run_ends_the_wait(hostile_fake, mnt):
    """dune: an unknown state with is_execution_finished true would never
    become a known one: a broken reply, so the read ends with EIO (after
    POLL_FAILURES_MAX polls) instead of waiting for ever; the run is not
    taken for failed, and once the API names a known state the result comes."""
    fake = hostile_fake
    eid = execute(mnt, SLOW_QUERIES[0]["id"])
    change = {"state": '"QUERY_STATE_ARCHIVED"', "is_execution_finished": "true"}
    fake.add_fault(match=status_match(fake, eid), action="rewrite", count=-1, set=change)
    assert outcome(mnt.p("executions", eid, "results.csv"), timeout=10) == errno.EIO
    assert len(requests_for(fake, "status", eid)) == 3
    assert "QUERY_STATE_ARCHIVED" in mnt.log()
    fake.reset()
    assert read(mnt.p("executions", eid, "results.csv")) == expected_csv(fake, eid)


def test_odd_latest_documents(hostile_fake, mounts):
    """The answer naming a query's latest result (dune: the one-row page;
    redash: the query document) names it oddly, or is malformed: latest.csv
    is that query's latest result, or an error; never another query's result,
    and the other queries' latest.* still work."""
    fake = hostile_fake
    mnt = mounts(options=["max_age=0"])
    qid = 1003
    other = fake.latest_result_id(1001) if redash(fake) else None
    if redash(fake):
        field = "latest_query_data_id"
        match = {"match": f"/api/queries/{qid}", "method": "GET"}
        values = ["1e400", "-0", "18446744073709551617", f"{other}.4", '"abc"', '"../x"', "true",
                  "[]", "{}", "-5", "9" * 400]
    else:
        field = "execution_id"
        match = {"match": f"/query/{qid}/results?limit=1"}
        values = ["null", "42", "1e400", '"../x"', '""', json.dumps("A" * 65), "[]"]
    want = fake_latest_csv(fake, qid)
    faults = {f"{field} {value[:20]}": {"set": {field: value}} for value in values}
    faults.update({"truncated": {"truncate": -4}, "garbage": {"replace": [[":", ":,"]]},
                   "nested 100000 deep": {"set": {"x": "[" * DEEP}}})
    bad = []
    for name, change in faults.items():
        fake.add_fault(**match, action="rewrite", **change)
        got = outcome(mnt.p("queries", str(qid), "latest.csv"))
        if got not in (want, errno.EIO, errno.ENODATA, errno.ENOENT):
            bad.append(f"{name}: {describe(got)}")
    assert not bad, "; ".join(bad)
    assert read(mnt.p("queries", str(qid), "latest.csv")) == want
    healthy(mnt, fake)


# ---- numbers no double holds, in rows -------------------------------------------

def number_faults(fake, eid):
    """Markers become raw numbers: JSON values in JSON, fields in CSV."""
    as_json = [[f'"{m}"', raw] for m, raw in NUMBERS.items()]
    as_csv = [[m, '"' + raw.replace('"', '""') + '"' if "," in raw else raw]
              for m, raw in NUMBERS.items()]
    fake.add_fault(match=results_match(fake, eid, "json"), action="rewrite", count=-1,
                   replace=as_json)
    fake.add_fault(match=results_match(fake, eid, "csv"), action="rewrite", count=-1,
                   replace=as_csv)


def test_huge_numbers_in_rows_come_through_byte_for_byte(hostile_fake, mnt):
    """1e400, 2^64+1, -0, 5000 digits, ...: results.json holds each row as the
    API sent it (dune: over 3 pages), results.ndjson too, a line each, and
    results.csv is the API's CSV."""
    fake = hostile_fake
    if not redash(fake):
        fake.settings(max_page_rows=3)
    eid = fresh_run(fake, NUMBERS_QUERY["id"])
    number_faults(fake, eid)
    rows = expected_rows(fake, eid)
    assert b"1e400" in rows[0] and b"9" * 5000 in b"".join(rows)  # the faults are on
    csv = read(mnt.p("executions", eid, "results.csv"))
    assert csv == expected_csv(fake, eid) and b"18446744073709551617" in csv
    assert check_json_file(fake, eid, read(mnt.p("executions", eid, "results.json")))
    assert read(mnt.p("executions", eid, "results.ndjson")) == expected_ndjson(fake, eid)
    healthy(mnt, fake)


@pytest.mark.backends("dune")
def test_huge_numbers_in_page_metadata(hostile_fake, mnt):
    """Row counts of 1e400 or 2^64+1 in a page's metadata: the rows come out
    byte for byte (and the document is valid JSON), or the read fails with EIO."""
    fake = hostile_fake
    bad = []
    for value in ("1e400", "18446744073709551617", "-0", "null", '"many"'):
        eid = fresh_run(fake)
        fake.add_fault(match=results_match(fake, eid, "json"), action="rewrite", count=-1,
                       set={"result.metadata.total_row_count": value,
                            "result.metadata.row_count": value})
        got = outcome(mnt.p("executions", eid, "results.json"))
        if got != errno.EIO and not (isinstance(got, bytes) and check_json_file(fake, eid, got)):
            bad.append(f"{value}: {describe(got)}")
        fake.reset()
    assert not bad, "; ".join(bad)


# ---- pages that hold less than they say -------------------------------------------

@pytest.mark.backends("dune")  # redash does not page, nor count its rows
@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson"])
def test_page_with_fewer_rows_than_it_says_is_eio(hostile_fake, mnt, fmt):
    """A page holds fewer rows than its metadata and links say (rows dropped
    from page 2 or from the last page; next_offset and x-dune-next-offset say
    otherwise; total_row_count, in the status document and on page 1, says
    25), or the links skip rows, end early or go round in a loop: EIO, not
    a short result (nor one that never ends)."""
    fake = hostile_fake
    kind = "csv" if fmt == "csv" else "json"
    path = "results/csv" if kind == "csv" else "results"
    link = "{base}/execution/{eid}/" + path + "?limit=10&offset={offset}&allow_partial_results=true"
    if kind == "csv":
        skip = lambda eid: {"headers": {"x-dune-next-uri": link.format(  # noqa: E731
            base=fake.base_url, eid=eid, offset=15), "x-dune-next-offset": "15"}}
        end_early = {"headers": {"x-dune-next-uri": None, "x-dune-next-offset": None}}
    else:
        skip = lambda eid: {"set": {"next_uri": json.dumps(link.format(  # noqa: E731
            base=fake.base_url, eid=eid, offset=15)), "next_offset": "15"}}
        end_early = {"delete": ["next_uri", "next_offset"]}
    if kind == "csv":
        loop = lambda eid: {"headers": {"x-dune-next-uri": link.format(  # noqa: E731
            base=fake.base_url, eid=eid, offset=10), "x-dune-next-offset": "10"}}
    else:
        loop = lambda eid: {"set": {"next_uri": json.dumps(link.format(  # noqa: E731
            base=fake.base_url, eid=eid, offset=10)), "next_offset": "10"}}
    cases = {  # name: (page, rewrite, how many requests it rewrites)
        "page 2 short by 3 rows": (2, lambda eid: {"drop_rows": 3}, -1),
        "last page short by 2 rows": (3, lambda eid: {"drop_rows": 2}, -1),
        "page 1 links past 5 rows": (1, skip, 1),
        "page 1 says it is the last": (1, lambda eid: end_early, 1),
        "page 2 links to itself": (2, loop, -1),
    }
    bad = []
    for name, (page, change, count) in cases.items():
        eid = fresh_run(fake)
        match = results_match(fake, eid, kind) if page == 1 else page_match(fake, eid, kind, page)
        fake.add_fault(match=match, action="rewrite", count=count, **change(eid))
        expect_eio(mnt.p("executions", eid, f"results.{fmt}"), bad, name)
        fake.reset()
    assert not bad, f"results.{fmt}: " + "; ".join(bad)
    healthy(mnt, fake)


# ---- bodies cut short, with or without an honest Content-Length -------------------

def test_body_shorter_than_its_content_length_is_fetched_again(hostile_fake, mnt):
    """A reply that ends before its Content-Length (status, CSV and JSON
    results; dune: page 2 too) is a broken transfer: asked again, and the
    reader gets every byte."""
    fake = hostile_fake
    eid = fresh_run(fake)
    fake.add_fault(match=status_match(fake, eid), action="rewrite", content_length=100_000)
    fake.add_fault(match=results_match(fake, eid, "csv"), action="rewrite", content_length=100_000)
    fake.add_fault(match=results_match(fake, eid, "json"), action="rewrite",
                   content_length=100_000)
    if not redash(fake):
        fake.add_fault(match=page_match(fake, eid, "csv", 2), action="rewrite", count=1,
                       content_length=100_000)
    assert read(mnt.p("executions", eid, "results.csv")) == expected_csv(fake, eid)
    assert check_json_file(fake, eid, read(mnt.p("executions", eid, "results.json")))
    assert [e.get("fault") for e in fake.log() if e.get("fault")] == \
        ["rewrite"] * (3 if redash(fake) else 4)
    healthy(mnt, fake)


def test_body_longer_than_its_content_length_spoils_nothing(hostile_fake, mnt):
    """A status document followed by bytes its Content-Length does not count
    (a broken server or proxy): the document is read as the Content-Length
    says, and the stray bytes left on the connection do not fail the requests
    that come after it (the result's download, other queries)."""
    fake = hostile_fake
    for _ in range(3):
        eid = fresh_run(fake)
        url = f"{fake.base_url}/api/jobs/{eid}" if redash(fake) else \
            f"{fake.base_url}/execution/{eid}/status"
        doc = api_get(fake, url)[0].decode()
        fake.add_fault(match=status_match(fake, eid), action="body", body=doc + "GARBAGE" * 4,
                       content_length=len(doc.encode()))
        got = outcome(mnt.p("executions", eid, "results.csv"))
        assert got == expected_csv(fake, eid), describe(got)
    healthy(mnt, fake)


def test_csv_cut_short_is_eio(hostile_fake, mnt):
    """A CSV body that ends mid-row, with a Content-Length that matches (or
    that says less than was sent): the API's CSV ends every row with a newline
    (dune LF, redash CRLF), so this is a cut, not a result: EIO."""
    fake = hostile_fake
    pages = [1] if redash(fake) else [1, 2, 3]
    bad = []
    for page in pages:
        for how in ("honest", "lying"):
            eid = fresh_run(fake)
            match = results_match(fake, eid, "csv") if page == 1 else page_match(fake, eid, "csv", page)
            body = api_pages(fake, eid, "csv")[page - 1]
            cut = len(body) - 20
            assert body[cut - 1:cut] not in (b"\n", b"\r")
            change = {"truncate": cut} if how == "honest" else {"content_length": cut}
            # page 1's match would take in the later pages: only its first request
            fake.add_fault(match=match, action="rewrite", count=1 if page == 1 else -1, **change)
            expect_eio(mnt.p("executions", eid, "results.csv"), bad, f"page {page}, Content-Length {how}")
            fake.reset()
    assert not bad, "; ".join(bad)
    healthy(mnt, fake)


def test_connection_reset_mid_body(hostile_fake, mnt):
    """A TCP RST in the middle of a result (dune: in page 2 as well), a status
    request that gets no answer at all: the transfer is asked again and the
    reader gets every byte."""
    fake = hostile_fake
    eid = fresh_run(fake)
    fake.add_fault(match=status_match(fake, eid), action="drop")
    fake.add_fault(match=results_match(fake, eid, "csv"), action="cut_body", at=100, reset=True)
    fake.add_fault(match=results_match(fake, eid, "json"), action="cut_body", at=100, reset=True)
    assert read(mnt.p("executions", eid, "results.csv")) == expected_csv(fake, eid)
    assert read(mnt.p("executions", eid, "results.ndjson")) == expected_ndjson(fake, eid)
    if not redash(fake):
        eid = fresh_run(fake)
        fake.add_fault(match=page_match(fake, eid, "csv", 2), action="cut_body", at=50, reset=True)
        fake.add_fault(match=page_match(fake, eid, "json", 2), action="cut_body", at=50, reset=True)
        assert read(mnt.p("executions", eid, "results.csv")) == expected_csv(fake, eid)
        assert check_json_file(fake, eid, read(mnt.p("executions", eid, "results.json")))
    assert len([e for e in fake.log() if e.get("fault") in ("cut_body", "drop")]) == \
        (3 if redash(fake) else 5)
    healthy(mnt, fake)


def test_stalled_body_then_the_rest(hostile_fake, mnt):
    """Headers and half a body, 2 s of silence, the rest (dune: mid page 2):
    the reader gets every byte. (execfs gives up on a transfer only after 60 s
    below 1 byte/s, CURLOPT_LOW_SPEED_TIME in src/http.c, with no option to
    shorten it: a longer stall is not tested here.)"""
    fake = hostile_fake
    eid = fresh_run(fake)
    match = results_match(fake, eid, "csv") if redash(fake) else page_match(fake, eid, "csv", 2)
    fake.add_fault(match=match, action="stall_body", seconds=2)
    t0 = time.monotonic()
    assert read(mnt.p("executions", eid, "results.csv")) == expected_csv(fake, eid)
    assert time.monotonic() - t0 >= 1.5


def test_stall_longer_than_the_timeout_option(hostile_fake, mounts):
    """With -o timeout=1, a reader of a result whose transfer stalls for 3 s
    (dune: mid page 2, after page 1 reached the reader) gets ETIMEDOUT, not a
    short file; the transfer goes on, and a later read gets every byte."""
    fake = hostile_fake
    mnt = mounts(options=["timeout=1"])
    eid = fresh_run(fake)
    match = results_match(fake, eid, "csv") if redash(fake) else page_match(fake, eid, "csv", 2)
    fake.add_fault(match=match, action="stall_body", seconds=3)
    assert outcome(mnt.p("executions", eid, "results.csv")) == errno.ETIMEDOUT
    want = expected_csv(fake, eid)
    wait_for(lambda: outcome(mnt.p("executions", eid, "results.csv")) == want, timeout=10)


# ---- links and redirects elsewhere ------------------------------------------------

@pytest.mark.backends("dune")  # redash does not page
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_next_page_elsewhere_is_refused(hostile_fake, mnt, recorders, fmt):
    """Page 1 links its successor (x-dune-next-uri for CSV, next_uri in JSON)
    to another host, the same host on another port, a URL with userinfo, or the
    API by another name: EIO, and nothing (least of all the key) goes there."""
    fake = hostile_fake
    same_host, other_host = recorders
    tail = "/api/v1/execution/{eid}/results" + ("/csv" if fmt == "csv" else "") + \
        "?limit=10&offset=10&allow_partial_results=true"
    targets = {
        "another host": f"http://127.0.0.2:{other_host.port}{tail}",
        "another port": f"http://127.0.0.1:{same_host.port}{tail}",
        "userinfo, another port": f"http://user@127.0.0.1:{same_host.port}{tail}",
        "userinfo, the API's port": f"http://user@127.0.0.1:{fake.port}{tail}",
        "the API's address as userinfo": f"http://127.0.0.1:{fake.port}@127.0.0.2:{other_host.port}{tail}",
        "the API by another name": f"http://localhost:{fake.port}{tail}",
        "relative": tail,
    }
    bad = []
    for name, target in targets.items():
        eid = fresh_run(fake)
        url = target.format(eid=eid)
        change = {"headers": {"x-dune-next-uri": url}} if fmt == "csv" else \
            {"set": {"next_uri": json.dumps(url)}}
        fake.add_fault(match=results_match(fake, eid, fmt), action="rewrite", count=1, **change)
        expect_eio(mnt.p("executions", eid, f"results.{fmt}"), bad, name)
        if [e for e in fake.log() if eid in e["path"] and "offset=10" in e["query"]]:
            bad.append(f"{name}: page 2 was asked for")
        fake.reset()
    nothing_heard(fake, recorders)
    assert not bad, "; ".join(bad)
    assert "refused" in mnt.log()  # each failure is logged
    healthy(mnt, fake)


@pytest.mark.backends("dune")
def test_next_page_of_another_execution_is_refused(hostile_fake, mnt):
    """Page 1 links to page 2 of another execution on the same API: following
    it would join two results into one file that looks complete: EIO."""
    fake = hostile_fake
    eid, other = fresh_run(fake), fresh_run(fake)
    url = f"{fake.base_url}/execution/{other}/results/csv?limit=10&offset=10&allow_partial_results=true"
    fake.add_fault(match=results_match(fake, eid, "csv"), action="rewrite", count=1,
                   headers={"x-dune-next-uri": url})
    assert outcome(mnt.p("executions", eid, "results.csv")) == errno.EIO


def test_redirect_elsewhere_is_not_followed(hostile_fake, mnt, recorders):
    """A redirect (301, 302, 307, 308; Location: another host) in place of a
    result or a status document: EIO, and the other host hears nothing."""
    fake = hostile_fake
    _, other_host = recorders
    elsewhere = f"http://127.0.0.2:{other_host.port}/steal"
    bad = []
    for code in (301, 302, 307, 308):
        for what in ("results", "status"):
            eid = fresh_run(fake)
            match = results_match(fake, eid, "csv") if what == "results" else status_match(fake, eid)
            fake.add_fault(match=match, action="body", code=code, body="",
                           headers={"Location": elsewhere}, count=-1)
            expect_eio(mnt.p("executions", eid, "results.csv"), bad, f"{code} for the {what}")
            fake.reset()
    nothing_heard(fake, recorders)
    assert not bad, "; ".join(bad)
    healthy(mnt, fake)
