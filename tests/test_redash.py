"""What only the redash backend has: executions made of result ids, job
status numbers, old servers, HTML where results were expected."""
import errno
import json
import os
import time

import pytest

from conftest import execute, fake_csv, fault_at, requests_for, wait_for

pytestmark = pytest.mark.backends("redash")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_execute_answered_from_cache_is_an_execution(mnt, fake):
    rid = fake.latest_result_id(1001)
    reply = {"query_result": json.loads(fake.truth_json(f"result-{rid}"))["query_result"]}
    fake.add_fault(**fault_at(fake, "execute"), action="status", code=200, body=json.dumps(reply))
    eid = execute(mnt, 1001)
    assert eid == f"result-{rid}"
    assert os.readlink(mnt.p("queries", "1001", "last")) == f"../../executions/{eid}"
    assert eid in os.listdir(mnt.p("executions"))
    assert read(mnt.p("executions", eid, "status")) == b"success\n"
    assert read(mnt.p("executions", eid, "results.csv")) == fake_csv(fake, eid)
    assert requests_for(fake, "status", eid) == []  # a result id needs no job lookup


def test_job_status_numbers(mnt, fake):
    eid = execute(mnt, 1002)
    status = mnt.p("executions", eid, "status")
    fake.set_state(eid, 7)  # "not started yet": not final
    time.sleep(1.1)
    assert read(status) == b"pending\n"
    fake.set_state(eid, "started")
    wait_for(lambda: read(status) == b"running\n")
    fake.set_state(eid, "cancelled")  # upstream: 4 with "Query cancelled by user."
    wait_for(lambda: read(status) == b"cancelled\n")
    with pytest.raises(OSError) as e:
        read(mnt.p("executions", eid, "results.csv"))
    assert e.value.errno == errno.ECANCELED


def test_status_5_is_cancelled_and_cancel_is_a_delete(mnt, fake):
    fake.settings(cancel_status5=True)
    eid = execute(mnt, 1002)
    with open(mnt.p("executions", eid, "cancel"), "w") as f:
        f.write("1\n")
    assert [e["method"] for e in requests_for(fake, "cancel", eid)] == ["DELETE"]
    wait_for(lambda: read(mnt.p("executions", eid, "status")) == b"cancelled\n")
    assert json.loads(read(mnt.p("executions", eid, "status.json")))["job"]["status"] == 5


def test_old_server_without_result_key(mnt, fake):
    fake.settings(old_server=True)
    eid = execute(mnt, 1001)
    assert read(mnt.p("executions", eid, "results.csv")) == fake_csv(fake, eid)
    assert "result" not in json.loads(read(mnt.p("executions", eid, "status.json")))["job"]


def test_result_kept_after_the_job_is_forgotten(mounts, fake):
    m = mounts()
    eid = execute(m, 1001)
    wait_for(lambda: read(m.p("executions", eid, "status")) == b"success\n")
    m.stop()
    fake.settings(job_ttl=0)  # Redash forgets jobs after about 12 h: 500 for it
    fake.reset()
    m2 = mounts(name="mnt2", cache_dir=m.cache)
    assert read(m2.p("executions", eid, "results.csv")) == fake_csv(fake, eid)
    assert read(m2.p("executions", eid, "status")) == b"success\n"
    assert requests_for(fake, "status", eid) == []  # the result id came from the index


def test_html_instead_of_a_result_is_eio_and_nothing_served(mnt, fake):
    eid = execute(mnt, 1001)
    wait_for(lambda: read(mnt.p("executions", eid, "status")) == b"success\n")
    fake.add_fault(**fault_at(fake, "csv"), action="html", count=-1)
    with pytest.raises(OSError) as e:
        read(mnt.p("executions", eid, "results.csv"))
    assert e.value.errno == errno.EIO
    assert "an HTML page where the CSV result was expected" in mnt.log()
    assert not [n for n in os.listdir(os.path.join(mnt.cache, "results")) if n.startswith(eid)]


def test_cancel_of_a_result_is_einval(mnt, fake):
    read(mnt.p("queries", "1001", "latest.csv"))
    eid = f"result-{fake.latest_result_id(1001)}"
    with pytest.raises(OSError) as e:
        with open(mnt.p("executions", eid, "cancel"), "w") as f:
            f.write("1\n")
    assert e.value.errno == errno.EINVAL
    assert [e for e in fake.log() if e["method"] == "DELETE"] == []
