"""Checks of the fake Dune API itself (tests/fake_dune.py), through plain urllib."""

import csv
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_dune  # noqa: E402

KEY = "secret-test-key"


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def call(url, method="GET", key=KEY, body=None):
    headers = {"X-Dune-API-Key": key} if key else {}
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.headers, e.read())


@pytest.fixture
def fake():
    server = fake_dune.FakeDune(key=KEY, time_scale=0)
    server.start()
    yield server
    server.stop()


def api(fake, path, **kwargs):
    return call(fake.base_url + path, **kwargs)


def control(fake, path, body=None):
    method = "GET" if body is None else "POST"
    return call(f"http://127.0.0.1:{fake.port}/_fake/{path}", method, key=None, body=body)


def execute(fake, qid, body=None):
    reply = api(fake, f"/query/{qid}/execute", method="POST", body=body)
    assert reply.status == 200, reply.body
    return reply.json()["execution_id"]


def test_auth(fake):
    for key in (None, "wrong"):
        reply = api(fake, "/query/1001/results", key=key)
        assert (reply.status, reply.json()) == (401, {"error": "invalid API Key"})
    assert api(fake, "/no/such/route", key=None).status == 401
    reply = api(fake, "/no/such/route")
    assert (reply.status, reply.json()) == (404, {"error": "not found"})

    reply = api(fake, f"/query/1001/results?limit=1&api_key={KEY}", key=None)
    assert reply.status == 200
    last = control(fake, "log").json()[-1]
    assert last["key_in_url"] and last["key_ok"] and last["status"] == 200
    assert KEY not in json.dumps(control(fake, "log").json())


def test_lifecycle_and_json_results(fake):
    fake.add_query({"id": 77, "generate_rows": 3, "pending_seconds": 0.4, "run_seconds": 0.8})
    fake.settings(time_scale=1.0)
    eid = execute(fake, 77)
    assert len(eid) == 26 and eid.startswith("01")

    status = api(fake, f"/execution/{eid}/status").json()
    assert status["state"] == "QUERY_STATE_PENDING" and not status["is_execution_finished"]
    assert "execution_started_at" not in status and status["queue_position"] == 1
    assert status["submitted_at"].endswith("Z")
    assert "result" not in api(fake, f"/execution/{eid}/results").json()
    reply = api(fake, f"/execution/{eid}/results/csv")
    assert reply.status == 409
    assert reply.json() == {"error": fake_dune.MSG_CSV_NOT_READY, "errorDetails": None,
                            "state": "QUERY_STATE_PENDING"}

    time.sleep(0.55)
    status = api(fake, f"/execution/{eid}/status").json()
    assert status["state"] == "QUERY_STATE_EXECUTING" and "execution_started_at" in status
    time.sleep(0.4)
    status = api(fake, f"/execution/{eid}/status").json()
    assert status["state"] == "QUERY_STATE_COMPLETED" and status["is_execution_finished"]
    assert status["result_metadata"]["total_row_count"] == 3

    results = api(fake, f"/execution/{eid}/results").json()
    rows = results["result"]["rows"]
    assert rows[1] == {"n": 1, "name": f"name_1_r{eid[-4:]}", "value": 1.5,
                       "day": "2021-06-07 13:22:10.000 UTC", "note": "has, comma"}
    assert list(rows[0]) == ["note", "day", "value", "name", "n"]  # reversed on purpose
    assert results["result"]["metadata"]["column_names"] == ["n", "name", "value", "day", "note"]
    assert "next_uri" not in results
    assert fake.executions()["77"] == 1


def test_csv_paging_matches_json(fake):
    fake.settings(max_page_rows=2000)
    url, pages, csv_rows = fake.base_url + "/query/1005/results/csv?limit=32000", 0, []
    while url:
        reply = call(url)
        assert reply.status == 200 and reply.headers["Content-Type"] == "text/csv"
        text = reply.body.decode()
        assert text.endswith("\n") and "\r\n" not in text.replace('\r\nkinds', '')
        page = list(csv.reader(io.StringIO(text, newline="")))
        assert page[0] == ["n", "name", "value", "day", "note"]  # header on every page
        csv_rows += page[1:]
        pages += 1
        url = reply.headers["x-dune-next-uri"]
        if url:
            assert url.startswith(f"http://127.0.0.1:{fake.port}/api/v1/query/1005/results/csv?")
            assert "limit=2000" in url and f"offset={pages * 2000}" in url
    assert pages == 3 and len(csv_rows) == 5000

    url, json_rows = fake.base_url + "/query/1005/results", []
    while url:
        document = call(url).json()
        json_rows += document["result"]["rows"]
        url = document.get("next_uri")
    assert len(json_rows) == 5000

    def text(value):
        return "" if value is None else repr(value) if isinstance(value, float) else str(value)

    names = ["n", "name", "value", "day", "note"]
    assert csv_rows == [[text(row[name]) for name in names] for row in json_rows]
    assert csv_rows[6][1].startswith("name_6_r") and csv_rows[6][1] == csv_rows[6][1][:12]
    csv_rows[6][1] = "name_6"
    assert ["6", "name_6", "9.0", "2021-06-07 13:27:10.000 UTC", 'all, "three"\r\nkinds'] in csv_rows

    past_end = api(fake, "/query/1005/results?offset=9000&limit=10").json()
    assert past_end["result"]["rows"] == [] and "next_uri" not in past_end


def test_latest_and_parameters(fake):
    assert api(fake, "/query/1003/results").json()["result"]["metadata"]["total_row_count"] == 7
    eid = execute(fake, 1003, {"query_parameters": {"days": "3", "chain": "polygon"}})
    latest = api(fake, "/query/1003/results?limit=1").json()
    assert latest["execution_id"] == eid and latest["next_offset"] == 1
    assert latest["result"]["rows"][0]["chain"] == "polygon"
    assert "params.chain=polygon" in api(fake, "/query/1003/results?limit=1&params.chain=polygon"
                                         ).json()["next_uri"]
    older = api(fake, "/query/1003/results?params.chain=ethereum").json()
    assert older["execution_id"] != eid and len(older["result"]["rows"]) == 7

    assert api(fake, "/query/1003/results?params.chain=solana").json() == {
        "error": "not found: No execution found for the latest version of the given query"}
    reply = api(fake, "/query/1007/results/csv")
    assert (reply.status, reply.json()["error"]) == (404, fake_dune.MSG_NO_EXECUTION)
    assert api(fake, "/query/9999/results").json() == {"error": "not found: Query not found or private"}
    assert fake.executions()["1007"] == 0  # reading never runs anything


def test_execute_errors(fake):
    cases = [
        (9999, None, 404, "not found: Query not found or private"),
        (1008, None, 403, fake_dune.MSG_ARCHIVED),
        (1003, b"{not json", 400, "invalid request body"),
        (1003, {"query_parameters": {"x": 1, "days": 2, "y": 3}}, 400, "unknown parameters (x, y)"),
    ]
    for qid, body, status, message in cases:
        reply = api(fake, f"/query/{qid}/execute", method="POST", body=body)
        assert (reply.status, reply.json()) == (status, {"error": message})
    assert api(fake, "/query/1001/execute", method="POST",
               body={"performance": "huge"}).status == 400
    assert sum(fake.executions().values()) == 0


def test_failed_and_partial(fake):
    eid = execute(fake, 1004)
    status = api(fake, f"/execution/{eid}/status").json()
    assert status["state"] == "QUERY_STATE_FAILED"
    assert status["error"]["message"] == "line 1:8: Column 'x' cannot be resolved"
    assert status["error"]["metadata"] == {"line": 1, "column": 8}
    results = api(fake, f"/execution/{eid}/results")
    assert results.status == 200 and "error" in results.json() and "result" not in results.json()
    assert api(fake, f"/execution/{eid}/results/csv").json()["state"] == "QUERY_STATE_FAILED"

    assert api(fake, "/query/1006/results").status == 400
    partial = api(fake, "/query/1006/results?allow_partial_results=true&limit=5").json()
    assert partial["state"] == "QUERY_STATE_COMPLETED_PARTIAL"
    assert "allow_partial_results=true" in partial["next_uri"]


def test_cancel_and_forced_state(fake):
    fake.settings(time_scale=1.0)
    eid = execute(fake, 1002)
    assert api(fake, f"/execution/{eid}/cancel", method="POST").json() == {"success": True}
    status = api(fake, f"/execution/{eid}/status").json()
    assert status["state"] == "QUERY_STATE_CANCELLED" and "cancelled_at" in status

    done = api(fake, "/query/1001/results?limit=1").json()["execution_id"]
    assert api(fake, f"/execution/{done}/cancel", method="POST").json() == {"success": True}
    assert api(fake, f"/execution/{done}/status").json()["state"] == "QUERY_STATE_COMPLETED"

    reply = api(fake, "/execution/bad-id!/cancel", method="POST")
    assert (reply.status, reply.json()) == (
        400, {"error": "The requested execution ID (ID: bad-id!) is invalid."})
    reply = api(fake, "/execution/01AAAAAAAAAAAAAAAAAAAAAAAA/status")
    assert (reply.status, reply.json()) == (
        404, {"error": "The requested execution ID (ID 01AAAAAAAAAAAAAAAAAAAAAAAA) was not found."})

    control(fake, "state", {"execution_id": done, "state": "QUERY_STATE_EXPIRED"})
    assert api(fake, f"/execution/{done}/status").json()["state"] == "QUERY_STATE_EXPIRED"
    assert api(fake, f"/execution/{done}/results/csv").status == 409


def test_faults(fake):
    control(fake, "faults", {"match": "/status", "action": "status", "code": 500, "count": 2})
    control(fake, "faults", {"match": "results", "method": "GET", "action": "status",
                             "code": 429, "retry_after": 3})
    eid = execute(fake, 1001)
    for _ in range(2):
        reply = api(fake, f"/execution/{eid}/status")
        assert (reply.status, reply.json()) == (500, {"error": "An internal error occurred"})
    assert api(fake, f"/execution/{eid}/status").status == 200
    reply = api(fake, f"/execution/{eid}/results")
    assert reply.status == 429 and reply.headers["Retry-After"] == "3"

    fake.add_fault(match="execute", action="drop_after_request")
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
        api(fake, "/query/1001/execute", method="POST")
    assert fake.executions()["1001"] == 2  # the request was acted on

    fake.add_fault(match="status", action="drop")
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
        api(fake, f"/execution/{eid}/status")
    fake.add_fault(match="results", action="cut_body")
    with pytest.raises(http.client.IncompleteRead):
        api(fake, f"/execution/{eid}/results")
    fake.add_fault(match="results", action="html")
    reply = api(fake, f"/execution/{eid}/results")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
    fake.add_fault(match="results", action="delay", seconds=0.3)
    started = time.monotonic()
    assert api(fake, f"/execution/{eid}/results").status == 200
    assert time.monotonic() - started >= 0.3

    log = control(fake, "log").json()
    assert [entry.get("fault") for entry in log].count("drop") == 1
    assert all(not entry["path"].startswith("/_fake") for entry in log)
    control(fake, "faults", {"match": "", "action": "status", "code": 503, "count": -1})
    assert control(fake, "reset", {}).json() == {"ok": True}
    assert control(fake, "log").json() == [] and control(fake, "faults").json() == []
    assert api(fake, f"/execution/{eid}/status").status == 200


def test_keep_alive(fake):
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    for _ in range(2):
        connection.request("GET", "/api/v1/query/1001/results", headers={"X-Dune-API-Key": KEY})
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["result"]
    connection.request("HEAD", "/api/v1/query/1001/results/csv", headers={"X-Dune-API-Key": KEY})
    response = connection.getresponse()
    assert response.status == 200 and response.read() == b""
    connection.close()


def test_command_line(tmp_path):
    port_file = tmp_path / "port"
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps([{"id": 5, "rows": [[1, None]], "nil_style": True,
                                     "columns": [{"name": "a", "type": "integer"},
                                                 {"name": "b", "type": "varchar"}]}]))
    process = subprocess.Popen(
        [sys.executable, fake_dune.__file__, "--key", "k", "--port-file", str(port_file),
         "--scenario", str(scenario), "--time-scale", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("PORT ")
        port = int(line.split()[1])
        assert int(port_file.read_text()) == port
        reply = call(f"http://127.0.0.1:{port}/api/v1/query/5/results/csv", key="k")
        assert reply.body == b"a,b\n1,<nil>\n"
        assert call(f"http://127.0.0.1:{port}/api/v1/query/1001/results", key="k").status == 404
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=5)
    assert process.returncode == 0 and stderr == ""


def raw(fake, path, method="GET"):
    """Status, headers and body as sent, read with http.client (no checks)."""
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    connection.request(method, "/api/v1" + path, headers={"X-Dune-API-Key": KEY})
    response = connection.getresponse()
    try:
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def test_body_and_rewrite_faults(fake):
    eid = execute(fake, 1005)
    status_path = f"/execution/{eid}/status"
    truth = api(fake, status_path).body

    # body: our own reply, its code, type and headers; a lying Content-Length
    fake.add_fault(match="/status", action="body", body="<p>hi</p>", code=302,
                   headers={"Location": "http://elsewhere/"})
    status, headers, body = raw(fake, status_path)
    assert (status, body, headers["Location"]) == (302, b"<p>hi</p>", "http://elsewhere/")
    assert headers["Content-Type"].startswith("text/html")
    fake.add_fault(match="/status", action="body", body='{"a": 1}', content_length=100)
    with pytest.raises(http.client.IncompleteRead):
        raw(fake, status_path)

    # rewrite: raw JSON at a path (verbatim, even where JSON has no such number)
    fake.add_fault(match="/status", action="rewrite", set={"state": "1e400",
                                                          "result_metadata.row_count": "-0",
                                                          "new.deep": '"x"'},
                   delete=["query_id", "no_such_field"])
    body = api(fake, status_path).body
    assert b'"state":1e400' in body and b'"row_count":-0' in body and b'"new":{"deep":"x"}' in body
    assert b"query_id" not in body and len(body) < len(truth) + 20
    fake.add_fault(match="/status", action="rewrite", replace=[['"', "'"]], truncate=-3)
    assert api(fake, status_path).body == truth.replace(b'"', b"'")[:-3]
    fake.add_fault(match="/status", action="rewrite", set={"result_metadata.row_count.y": "1"})
    assert api(fake, status_path).status == 500  # no path through a number: said, not hidden
    assert api(fake, status_path).body == truth  # one request each, then the truth again

    # rewrite of a JSON page: rows dropped, metadata and links kept
    page = api(fake, f"/execution/{eid}/results?limit=10").json()
    fake.add_fault(match="/results?", action="rewrite", drop_rows=3)
    short = api(fake, f"/execution/{eid}/results?limit=10").json()
    assert short["result"]["rows"] == page["result"]["rows"][:7]
    assert short["result"]["metadata"] == page["result"]["metadata"]
    assert short["next_uri"] == page["next_uri"]

    # rewrite of a CSV page: records dropped (quoted newlines stay inside),
    # headers replaced and removed, a Content-Length that says less than sent
    whole = api(fake, f"/execution/{eid}/results/csv?limit=7")
    fake.add_fault(match="/results/csv", action="rewrite", drop_rows=2,
                   headers={"x-dune-next-uri": "http://other/", "x-dune-next-offset": None})
    status, headers, body = raw(fake, f"/execution/{eid}/results/csv?limit=7")
    records = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert records == list(csv.reader(io.StringIO(whole.body.decode(), newline="")))[:-2]
    assert whole.body.startswith(body) and body.endswith(b"\n")
    assert headers["x-dune-next-uri"] == "http://other/" and "x-dune-next-offset" not in headers
    fake.add_fault(match="/results/csv", action="rewrite", content_length=10)
    assert raw(fake, f"/execution/{eid}/results/csv?limit=7")[2] == whole.body[:10]

    # cut_body: at a byte, with a FIN or a TCP RST
    fake.add_fault(match="/status", action="cut_body", at=5)
    with pytest.raises(http.client.IncompleteRead) as e:
        raw(fake, status_path)
    assert e.value.partial == truth[:5]
    fake.add_fault(match="/status", action="cut_body", at=5, reset=True)
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        raw(fake, status_path)

    assert [e.get("fault") for e in fake.log() if e.get("fault")] == \
        ["body", "body", "rewrite", "rewrite", "rewrite", "rewrite", "rewrite", "rewrite",
         "cut_body", "cut_body"]
    for bad in ({"action": "body"}, {"action": "body", "body": "x", "code": 99},
                {"action": "rewrite", "set": {"a": 1}}, {"action": "rewrite", "replace": [["x"]]},
                {"action": "rewrite", "headers": {"a": 1}}, {"action": "cut_body", "at": -1},
                {"action": "rewrite", "truncate": "3"}):
        assert control(fake, "faults", bad).status == 400, bad
