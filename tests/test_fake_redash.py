"""The fake Redash API itself, against the facts of api/redash.md."""
import json
import time
import urllib.error
import urllib.request

import pytest

from fake_redash import FakeRedash


@pytest.fixture
def fake():
    f = FakeRedash(key="k", time_scale=0.1)
    f.start()
    yield f
    f.stop()


def call(fake, method, path, body=None, key="k", raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Key {key}"
    req = urllib.request.Request(fake.base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def run(fake, qid, params=None, max_age=0):
    status, _, body = call(fake, "POST", f"/api/queries/{qid}/results",
                           {"parameters": params or {}, "max_age": max_age})
    assert status == 200, body
    return json.loads(body)


def wait_job(fake, job_id):
    for _ in range(100):
        job = json.loads(call(fake, "GET", f"/api/jobs/{job_id}")[2])["job"]
        if job["status"] >= 3:
            return job
        time.sleep(0.02)
    raise AssertionError("job did not end")


def test_auth(fake):
    login = {"message": "Couldn't find resource. Please login and try again."}
    assert call(fake, "GET", "/api/queries/1001", key=None)[0] == 404
    status, _, body = call(fake, "GET", "/api/queries/1001", key="wrong")
    assert status == 404 and json.loads(body) == login
    assert call(fake, "GET", "/api/queries/1001?api_key=k", key=None)[0] == 200
    assert call(fake, "GET", "/api/queries/1001?api_key=wrong", key="k")[0] == 404  # the URL wins
    assert [e["key_in_url"] for e in fake.log()] == [False, False, True, True]
    assert all("k" not in e["query"].split("=")[-1:] for e in fake.log() if e["key_in_url"])


def test_job_lifecycle_and_result_by_id(fake):
    job = run(fake, 1001)["job"]
    assert job["status"] == 1 and job["updated_at"] == 0 and job["query_result_id"] is None
    done = wait_job(fake, job["id"])
    assert done["status"] == 3 and done["query_result_id"] == done["result"]
    rid = done["query_result_id"]
    status, ctype, csv_bytes = call(fake, "GET", f"/api/query_results/{rid}.csv")
    assert status == 200 and ctype.startswith("text/csv")
    assert csv_bytes.startswith(b"n,name,value,day,note\r\n") and csv_bytes.endswith(b"\r\n")
    assert b"0,name_0_r%d,0.0,07/06/21 13:21,note 0\r\n" % rid in csv_bytes  # DD/MM/YY HH:mm
    assert b'"has, comma"' in csv_bytes and b'"says ""hi"""' in csv_bytes
    doc = json.loads(call(fake, "GET", f"/api/query_results/{rid}.json")[2])["query_result"]
    assert doc["id"] == rid and len(doc["data"]["rows"]) == 10
    assert doc["data"]["columns"][3] == {"name": "day", "friendly_name": "day", "type": "datetime"}
    assert call(fake, "GET", f"/api/query_results/{rid}")[1].startswith("text/html")  # no extension
    assert call(fake, "GET", f"/api/queries/1001/results/{rid}.csv")[2] == csv_bytes
    assert call(fake, "GET", f"/api/queries/1002/results/{rid}.csv")[0] == 404


def test_latest(fake):
    query = json.loads(call(fake, "GET", "/api/queries/1001")[2])
    rid = query["latest_query_data_id"]
    assert rid and query["options"]["parameters"] == []
    assert call(fake, "GET", "/api/queries/1001/results.csv")[2] == fake.truth_csv(f"result-{rid}")
    assert json.loads(call(fake, "GET", "/api/queries/1007")[2])["latest_query_data_id"] is None
    status, _, body = call(fake, "GET", "/api/queries/1007/results.json")
    assert status == 404 and json.loads(body) == {"message": "No cached result found for this query."}
    # a run with other parameters is not the latest
    job = wait_job(fake, run(fake, 1003, {"days": 2, "chain": "x"})["job"]["id"])
    assert fake.latest_result_id(1003) != job["query_result_id"]
    job = wait_job(fake, run(fake, 1003, {"days": 7, "chain": "ethereum"})["job"]["id"])
    assert fake.latest_result_id(1003) == job["query_result_id"]


def test_parameters_checked_without_defaults(fake):
    status, _, body = call(fake, "POST", "/api/queries/1003/results", {"max_age": 0})
    assert status == 400
    assert json.loads(body) == {"job": {"status": 4, "error": "Missing parameter value for: days, chain"}}
    status, _, body = call(fake, "POST", "/api/queries/1003/results",
                           {"parameters": {"days": "x", "chain": "a"}, "max_age": 0})
    assert status == 400 and json.loads(body)["message"] == (
        "The following parameter values are incompatible with their definitions: days")
    assert run(fake, 1003, {"days": "3", "chain": "a"})["job"]["status"] == 1  # numeric strings pass
    bad = {"days": 1, "label": "x", "since": "2024-01-01", "span": {"start": "2024-01-01"},
           "kind": "nope", "tags": ["a", "z"]}
    status, _, body = call(fake, "POST", "/api/queries/1009/results", {"parameters": bad, "max_age": 0})
    assert json.loads(body)["message"].endswith("definitions: span, kind, tags")


def test_dedup_and_max_age(fake):
    a = run(fake, 1002)["job"]["id"]
    assert run(fake, 1002)["job"]["id"] == a  # the same text is already running
    assert fake.executions()["1002"] == 1
    done = wait_job(fake, run(fake, 1001)["job"]["id"])
    cached = run(fake, 1001, max_age=-1)
    assert cached["query_result"]["id"] == done["query_result_id"]
    assert "job" in run(fake, 1001, max_age=0)


def test_refresh_both_forms(fake):
    status, _, body = call(fake, "POST", "/api/queries/1003/refresh?p_days=2&p_chain=base", raw=b"")
    assert status == 200
    job = wait_job(fake, json.loads(body)["job"]["id"])
    assert fake.truth_csv(job["id"]).count(b"\r\n") == 3  # header + 2 rows
    status, _, body = call(fake, "POST", "/api/queries/1003/refresh",
                           {"parameters": {"days": 1, "chain": "x"}, "max_age": 0})
    assert status == 200 and json.loads(body)["job"]["status"] == 1


def test_unknown_job_cancel_and_settings(fake):
    status, _, body = call(fake, "GET", "/api/jobs/no-such-job")
    assert status == 500 and json.loads(body) == {"message": "Internal Server Error"}
    job = run(fake, 1002)["job"]["id"]
    status, _, body = call(fake, "DELETE", f"/api/jobs/{job}")
    assert status == 200 and body == b"null"
    doc = json.loads(call(fake, "GET", f"/api/jobs/{job}")[2])["job"]
    assert doc["status"] == 4 and doc["error"] == "Query cancelled by user."
    fake.settings(cancel_status5=True, old_server=True)
    doc = json.loads(call(fake, "GET", f"/api/jobs/{job}")[2])["job"]
    assert doc["status"] == 5 and "result" not in doc
    fake.set_state(job, 7)
    assert json.loads(call(fake, "GET", f"/api/jobs/{job}")[2])["job"]["status"] == 7
    fake.settings(job_ttl=0)
    assert call(fake, "GET", f"/api/jobs/{job}")[0] == 500  # forgotten


def test_failures_archived_and_unknown_paths(fake):
    job = wait_job(fake, run(fake, 1004)["job"]["id"])
    assert job["status"] == 4 and job["error"] == "line 1:8: Column 'x' cannot be resolved"
    status, _, body = call(fake, "POST", "/api/queries/1008/results", {"max_age": 0})
    assert status == 403 and "message" in json.loads(body)
    status, ctype, _ = call(fake, "GET", "/api/nothing/here")
    assert status == 404 and ctype.startswith("text/html")
    fake.add_fault(match="/api/jobs/", action="status", code=500)
    assert json.loads(call(fake, "GET", f"/api/jobs/{job['id']}")[2]) == {"message": "Internal Server Error"}


def test_rewrite_faults_on_jobs_and_results(fake):
    fake.add_query({"id": 77, "generate_rows": 4, "pending_seconds": 0, "run_seconds": 0,
                    "prior_runs": 0})
    job = run(fake, 77)["job"]
    # a run of no duration: success comes with its result id, never without
    assert job["status"] == 3 and job["query_result_id"] == job["result"] is not None
    rid = job["query_result_id"]
    fake.add_fault(match="/api/jobs/", action="rewrite",
                   set={"job.status": "1e400", "job.query_result_id": f"{rid}.4"})
    status, _, body = call(fake, "GET", f"/api/jobs/{job['id']}")
    assert status == 200 and b'"status":1e400' in body and b'"query_result_id":%d.4' % rid in body
    fake.add_fault(match=f"/{rid}.json", action="rewrite", drop_rows=1)
    rows = json.loads(call(fake, "GET", f"/api/query_results/{rid}.json")[2])["query_result"]["data"]["rows"]
    assert [r["n"] for r in rows] == [0, 1, 2]
    fake.add_fault(match=f"/{rid}.csv", action="rewrite", drop_rows=3)
    assert call(fake, "GET", f"/api/query_results/{rid}.csv")[2] == b"n,name,value,day,note\r\n" + \
        fake.truth_csv(job["id"]).split(b"\r\n")[1] + b"\r\n"
    fake.add_fault(match=f"/{rid}.json", action="body", body="{}", content_type="text/plain")
    assert call(fake, "GET", f"/api/query_results/{rid}.json")[1:] == ("text/plain", b"{}")
    assert call(fake, "GET", f"/api/query_results/{rid}.json")[2] == fake.truth_json(job["id"])
