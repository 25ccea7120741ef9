"""Errors (README, "Errors") for everything the APIs can answer."""
import errno
import os
import subprocess
import time

import pytest

from conftest import (Mount, execute, fake_csv, fake_latest_csv, fault_at, message, new_key,
                      requests_for, wait_for)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def errno_of(fn):
    with pytest.raises(OSError) as e:
        fn()
    return e.value.errno


def write_execute(m, qid, text="\n"):
    with open(m.p("queries", str(qid), "execute"), "w") as f:
        f.write(text)


def test_401_wrong_key_is_eacces_with_log_line(fake, tmp_path):
    m = Mount(fake, tmp_path, key=new_key())
    m.start()
    # Redash answers a wrong key with a 404 "please login"
    words = message(fake, dune="invalid API Key",
                    redash="Couldn't find resource. Please login and try again.")
    try:
        assert errno_of(lambda: read(m.p("queries", "1001", "latest.csv"))) == errno.EACCES
        assert errno_of(lambda: write_execute(m, 1001)) == errno.EACCES
        assert read(m.p("queries", "1001", "error")) == words.encode() + b"\n"
    finally:
        m.stop()
    log = m.log()
    status = message(fake, dune="HTTP 401", redash="HTTP 404")
    assert status in log and words in log and "API key" in log
    assert "queries/1001" in log
    assert m.key not in log
    assert fake.executions()["1001"] == 0


@pytest.mark.backends("dune")  # Redash has no billing
def test_402_billing_limit_is_edquot(mnt, fake):
    fake.add_fault(match="/execute", action="status", code=402)
    assert errno_of(lambda: write_execute(mnt, 1001)) == errno.EDQUOT
    assert b"limits" in read(mnt.p("queries", "1001", "error"))
    assert "HTTP 402" in mnt.log()


def test_403_archived_query_is_eacces(mnt, fake):
    assert errno_of(lambda: write_execute(mnt, 1008)) == errno.EACCES
    words = message(fake, dune=b"archived", redash=b"permission")
    assert words in read(mnt.p("queries", "1008", "error"))


def test_404_unknown_query_latest_is_enoent(mnt, fake):
    assert errno_of(lambda: read(mnt.p("queries", "999999", "latest.csv"))) == errno.ENOENT
    assert b"Query not found" in read(mnt.p("queries", "999999", "error"))


def test_never_run_latest_is_enodata(mnt, fake):
    assert errno_of(lambda: read(mnt.p("queries", "1007", "latest.csv"))) == errno.ENODATA
    words = message(fake, dune=b"No execution found", redash=b"No cached result found")
    assert words in read(mnt.p("queries", "1007", "error"))
    # and how to start one
    assert (b": start a run with `echo > queries/1007/execute` (parameters: `echo days=7 > "
            b"queries/1007/execute`)\n") in read(mnt.p("queries", "1007", "error"))
    # after a run, latest works
    eid = execute(mnt, 1007)
    read(mnt.p("executions", eid, "results.csv"))


def test_failed_execution_is_eio_with_message(mnt, fake):
    eid = execute(mnt, 1004)
    assert errno_of(lambda: read(mnt.p("executions", eid, "results.csv"))) == errno.EIO
    assert errno_of(lambda: read(mnt.p("executions", eid, "results.json"))) == errno.EIO
    assert read(mnt.p("executions", eid, "status")) == b"failure\n"
    assert read(mnt.p("executions", eid, "error")) == b"line 1:8: Column 'x' cannot be resolved\n"
    out = subprocess.run(["cat", mnt.p("queries", "1004", "last", "results.csv")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "Input/output error" in out.stderr
    assert f"executions/{eid}: the run failed: line 1:8" in mnt.log()


@pytest.mark.backends("dune")  # Redash results do not expire
def test_expired_execution_is_enodata(mnt, fake):
    eid = execute(mnt, 1001)
    fake.set_state(eid, "QUERY_STATE_EXPIRED")
    assert errno_of(lambda: read(mnt.p("executions", eid, "results.csv"))) == errno.ENODATA
    assert read(mnt.p("executions", eid, "status")) == b"expired\n"


@pytest.mark.backends("dune")
def test_expired_but_cached_is_still_served(mnt, fake):
    eid = execute(mnt, 1001)
    data = read(mnt.p("executions", eid, "results.csv"))
    fake.set_state(eid, "QUERY_STATE_EXPIRED")
    assert read(mnt.p("executions", eid, "results.csv")) == data


def test_cancelled_before_read_is_ecanceled(mnt, fake):
    fake.add_query({"id": 2002, "columns": [{"name": "n", "type": "integer"}], "generate_rows": 1,
                    "pending_seconds": 5, "run_seconds": 50, "prior_runs": 0})
    eid = execute(mnt, 2002)
    with open(mnt.p("executions", eid, "cancel"), "w") as f:
        f.write("x")
    assert errno_of(lambda: read(mnt.p("executions", eid, "results.csv"))) == errno.ECANCELED


@pytest.mark.backends("dune")  # Dune's "CSV not ready"
def test_409_on_results_is_eio(mnt, fake):
    eid = execute(mnt, 1001)
    open(mnt.p("executions", eid, "status")).read()
    fake.add_fault(match="/results/csv", action="status", code=409, count=-1)
    assert errno_of(lambda: read(mnt.p("executions", eid, "results.csv"))) == errno.EIO
    assert "HTTP 409" in mnt.log()
    assert not [n for n in os.listdir(os.path.join(mnt.cache, "results")) if n.startswith(eid)]


def test_429_with_retry_after_is_retried_then_served(mnt, fake):
    fake.add_fault(**fault_at(fake, "latest", 1001), action="status", code=429, retry_after=1, count=2)
    t0 = time.monotonic()
    data = read(mnt.p("queries", "1001", "latest.csv"))
    assert data == fake_latest_csv(fake, 1001)
    assert time.monotonic() - t0 >= 1.5  # Retry-After honoured twice
    assert [e["status"] for e in requests_for(fake, "latest", 1001)][:3] == [429, 429, 200]


def test_429_without_retry_after_is_retried(mnt, fake):
    fake.add_fault(**fault_at(fake, "latest", 1001), action="status", code=429, count=1)
    assert read(mnt.p("queries", "1001", "latest.csv")).startswith(b"n,name")


def test_429_for_ever_is_eagain(mnt, fake):
    fake.add_fault(**fault_at(fake, "latest", 1001), action="status", code=429, retry_after=0, count=-1)
    assert errno_of(lambda: read(mnt.p("queries", "1001", "latest.csv"))) == errno.EAGAIN
    assert len(requests_for(fake, "latest", 1001)) == 6  # bounded retries


@pytest.mark.parametrize("code", [502, 503, 504])
def test_gateway_errors_are_retried(mnt, fake, code):
    fake.add_fault(**fault_at(fake, "csv"), action="status", code=code, count=2)
    eid = execute(mnt, 1001)
    assert read(mnt.p("executions", eid, "results.csv")) == fake_csv(fake, eid)


def test_500_is_eio_with_log_line(mnt, fake):
    fake.add_fault(**fault_at(fake, "latest", 1001), action="status", code=500, count=-1)
    assert errno_of(lambda: read(mnt.p("queries", "1001", "latest.csv"))) == errno.EIO
    words = message(fake, dune="An internal error occurred", redash="Internal Server Error")
    assert f"HTTP 500: {words}" in mnt.log()
    assert len(requests_for(fake, "latest", 1001)) == 1  # 500 is not retried


def test_execute_500_is_not_retried(mnt, fake):
    fake.add_fault(**fault_at(fake, "execute"), action="status", code=500)
    assert errno_of(lambda: write_execute(mnt, 1001)) == errno.EIO
    assert len(requests_for(fake, "execute", 1001)) == 1


def test_execute_dropped_after_sending_is_not_retried(mnt, fake):
    fake.add_fault(**fault_at(fake, "execute"), action="drop_after_request")
    assert errno_of(lambda: write_execute(mnt, 1001)) == errno.EIO
    assert fake.executions()["1001"] == 1  # one paid run, not two
    assert len(requests_for(fake, "execute", 1001)) == 1


def test_execute_429_is_retried(mnt, fake):
    fake.add_fault(**fault_at(fake, "execute"), action="status", code=429, retry_after=0)
    eid = execute(mnt, 1001)
    assert fake.executions()["1001"] == 1 and eid


def test_html_instead_of_json_is_eio(mnt, fake):
    fake.add_fault(**fault_at(fake, "latest", 1001), action="html", count=-1)
    assert errno_of(lambda: read(mnt.p("queries", "1001", "latest.csv"))) == errno.EIO
    assert "expected JSON" in mnt.log()


@pytest.fixture(params=["normal", "debug"])
def any_log_level(request, mounts):
    return mounts(args=["-d"] if request.param == "debug" else [])


def test_key_appears_nowhere(any_log_level, fake):
    mnt = any_log_level
    eid = execute(mnt, 1005)
    read(mnt.p("executions", eid, "results.csv"))
    read(mnt.p("executions", eid, "results.json"))
    read(mnt.p("queries", "1001", "latest.csv"))
    with pytest.raises(OSError):
        write_execute(mnt, 1003, "bad=1")
    key = fake.key.encode()
    for dirpath, _, files in os.walk(mnt.path):
        for name in files:
            path = os.path.join(dirpath, name)
            if name in ("execute", "cancel"):
                continue
            try:
                assert key not in read(path), path
            except OSError:
                pass
    for dirpath, _, files in os.walk(mnt.cache):
        for name in files:
            assert key not in read(os.path.join(dirpath, name))
    assert fake.key not in mnt.log()
    assert "GET " in mnt.log() or "-d" not in mnt.args  # debug lines name the requests
    cmdline = read(f"/proc/{mnt.proc.pid}/cmdline")
    assert key not in cmdline
    assert all(not e["key_in_url"] for e in fake.log())


@pytest.mark.backends("dune")  # pages: see the redash one below
def test_body_cut_mid_page_resumes_byte_identical(mnt, fake):
    eid = execute(mnt, 1005)
    open(mnt.p("executions", eid, "status")).read()
    fake.add_fault(match="offset=2000", action="cut_body", count=1)
    fake.add_fault(match=f"{eid}/results?", action="cut_body", count=1)
    data = read(mnt.p("executions", eid, "results.csv"))
    doc = read(mnt.p("executions", eid, "results.json"))
    assert data == fake_csv(fake, eid)
    import json
    assert len(json.loads(doc)["result"]["rows"]) == 5000
    assert [e.get("fault") for e in fake.log() if e.get("fault")] == ["cut_body", "cut_body"]


@pytest.mark.backends("redash")
def test_body_cut_is_fetched_again_byte_identical(mnt, fake):
    eid = execute(mnt, 1005)
    open(mnt.p("executions", eid, "status")).read()
    fake.add_fault(**fault_at(fake, "csv"), action="cut_body", count=1)
    fake.add_fault(**fault_at(fake, "json"), action="cut_body", count=1)
    data = read(mnt.p("executions", eid, "results.csv"))
    doc = read(mnt.p("executions", eid, "results.json"))
    assert data == fake_csv(fake, eid)
    assert doc == fake.truth_json(eid)
    assert [e.get("fault") for e in fake.log() if e.get("fault")] == ["cut_body", "cut_body"]


def test_429_pauses_the_whole_source(mnt, fake):
    import threading
    fake.add_fault(**fault_at(fake, "latest", 1001), action="status", code=429, retry_after=1, count=1)
    got = []
    t = threading.Thread(target=lambda: got.append(read(mnt.p("queries", "1001", "latest.csv"))))
    t.start()
    # the daemon has taken the 429 in (the fake logs it as it answers, a moment
    # before the daemon reads it)
    wait_for(lambda: "HTTP 429, retrying in" in mnt.log())
    read(mnt.p("queries", "1003", "latest.csv"))  # another query, same source
    t.join(30)
    assert got == [fake_latest_csv(fake, 1001)]  # the limited read was served in the end
    log = fake.log()
    limited = next(e["time"] for e in log if e["status"] == 429)
    after = [e["time"] - limited for e in log if e["time"] > limited]
    assert after and min(after) >= 0.9  # nobody asked again before Retry-After passed
