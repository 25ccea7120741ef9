"""Waiting reads: parked without threads, interruptible, bounded, unmount-safe."""
import errno
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import execute, fake_csv, fault_at, requests_for, wait_for

SLOW = {"id": 2001, "name": "slow for tests",
        "columns": [{"name": "n", "type": "integer"}, {"name": "name", "type": "varchar"}],
        "generate_rows": 5, "pending_seconds": 2.0, "run_seconds": 25.0, "prior_runs": 0}
# with the fixture's time scale of 0.2 this run takes 5 s


@pytest.fixture
def slow(fake):
    fake.add_query(SLOW)
    return SLOW["id"]


def threads_of(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def start_cat(path):
    return subprocess.Popen(["cat", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_read_waits_for_the_end(mnt, fake, slow):
    eid = execute(mnt, slow)
    t0 = time.monotonic()
    data = open(mnt.p("executions", eid, "results.csv"), "rb").read()
    assert time.monotonic() - t0 > 2.0  # it really waited
    assert data == fake_csv(fake, eid)


def test_ctrl_c_ends_a_waiting_read_at_once_without_cancelling(mnt, fake, slow):
    eid = execute(mnt, slow)
    path = mnt.p("executions", eid, "results.csv")
    other = start_cat(path)
    cat = start_cat(path)
    time.sleep(0.7)
    assert cat.poll() is None
    t0 = time.monotonic()
    cat.send_signal(signal.SIGINT)
    cat.wait(5)
    elapsed = time.monotonic() - t0
    print(f"SIGINT to a waiting cat: ended after {elapsed * 1000:.1f} ms")
    assert cat.returncode == -signal.SIGINT
    assert elapsed < 2.0
    out, _ = other.communicate(timeout=30)
    assert other.returncode == 0 and out == fake_csv(fake, eid)
    assert requests_for(fake, "cancel", eid) == []
    assert fake.executions()[str(slow)] == 1


def test_many_waiting_readers_cost_no_threads_and_one_poller(mnt, fake, slow):
    eid = execute(mnt, slow)
    path = mnt.p("executions", eid, "results.csv")
    before = threads_of(mnt.proc.pid)
    cats = [start_cat(path) for _ in range(50)]
    time.sleep(1.0)
    assert all(c.poll() is None for c in cats)
    # the tree still answers at once while 50 reads are parked
    t0 = time.monotonic()
    subprocess.run(["ls", "-l", mnt.p("executions", eid)], check=True, capture_output=True, timeout=5)
    os.stat(mnt.p("queries", "1001", "latest.csv"))
    assert open(mnt.p("queries", "1001", "latest.csv"), "rb").read().startswith(b"n,")
    assert open(mnt.p("executions", eid, "status")).read() in ("pending\n", "running\n")
    elapsed = time.monotonic() - t0
    print(f"ls -l + stat + read of other files with 50 waiting readers: {elapsed * 1000:.1f} ms")
    during = threads_of(mnt.proc.pid)
    print(f"daemon threads: {before} before, {during} with 50 waiting readers")
    assert during <= 16
    outs = [c.communicate(timeout=60)[0] for c in cats]
    want = fake_csv(fake, eid)
    assert all(o == want for o in outs)
    polls = len(requests_for(fake, "status", eid))
    print(f"status requests for one 5 s run with 50 readers: {polls}")
    assert polls <= 12  # one poller with backoff, not one per reader


LONG = {"id": 2003, "name": "long for tests", "columns": [{"name": "n", "type": "integer"}],
        "generate_rows": 3, "pending_seconds": 0, "run_seconds": 300.0, "prior_runs": 0}
# 60 s at the fixture's time scale: running for the whole test


def test_opening_status_during_a_poll_adds_no_second_poller(mnt, fake):
    # `status` opened while a poll is under way waits for a poll begun after
    # it. That fresh poll must take the place of the next scheduled one, not
    # come on top of it: two chains would double the requests for the rest
    # of the run (3 s apart at the back-off's ceiling; 40 a minute is
    # Dune's free plan).
    fake.add_query(LONG)
    eid = execute(mnt, LONG["id"])
    reader = start_cat(mnt.p("executions", eid, "results.csv"))
    try:
        time.sleep(4.0)  # polls at 0, 0.5, 1.5 and 3.5 s: the back-off is at its ceiling
        fake.add_fault(**fault_at(fake, "status"), action="delay", seconds=1.0)
        wait_for(lambda: fake.faults() == [])  # the next poll is under way, and slow
        time.sleep(0.2)
        assert open(mnt.p("executions", eid, "status")).read() == "running\n"
        t0 = time.time()
        time.sleep(6.5)
        polls = [e for e in requests_for(fake, "status", eid) if e["time"] >= t0]
        print(f"status requests in the 6.5 s after a status open mid-poll: {len(polls)}")
        assert len(polls) <= 3  # one chain: 2 or 3; two chains: 4 or more
    finally:
        reader.kill()
        reader.wait()


def test_timeout_option(mounts, fake, slow):
    m = mounts(options=["timeout=1"])
    eid = execute(m, slow)
    t0 = time.monotonic()
    with pytest.raises(OSError) as e:
        open(m.p("executions", eid, "results.csv"), "rb").read()
    assert e.value.errno == errno.ETIMEDOUT
    assert 0.9 < time.monotonic() - t0 < 5
    # not silent: the error file and one log line say the wait ended, not the run
    with open(m.p("executions", eid, "error")) as f:
        assert f.read() == ("a read waited 1 s (timeout=1) and gave up (ETIMEDOUT); "
                            "the run goes on: read again to keep waiting\n")
    assert f"executions/{eid}/results.csv: the wait ended after 1 s (timeout); the run goes on" in m.log()


def test_unmount_ends_waiting_readers(mounts, fake, slow):
    m = mounts()
    eid = execute(m, slow)
    cats = [start_cat(m.p("executions", eid, "results.csv")) for _ in range(5)]
    time.sleep(0.5)
    t0 = time.monotonic()
    # the kernel refuses a plain unmount while files are open (EBUSY) ...
    r = subprocess.run(["fusermount3", "-u", m.path], capture_output=True, text=True)
    if os.path.ismount(m.path):
        assert "busy" in r.stderr.lower()
        # ... and the lazy one detaches at once; execfs notices and ends the reads
        subprocess.run(["fusermount3", "-uz", m.path], check=True)
    for c in cats:
        c.wait(5)
        assert c.returncode != 0
    m.proc.wait(10)
    print(f"unmount with 5 waiting readers: all ended in {(time.monotonic() - t0) * 1000:.0f} ms")
    assert time.monotonic() - t0 < 2.5


def test_lazy_unmount_ends_waiting_readers(mounts, fake, slow):
    m = mounts()
    eid = execute(m, slow)
    cats = [start_cat(m.p("executions", eid, "results.csv")) for _ in range(3)]
    time.sleep(0.5)
    t0 = time.monotonic()
    subprocess.run(["fusermount3", "-uz", m.path], check=True)
    for c in cats:
        c.wait(5)
        assert c.returncode != 0
        assert b"not connected" in c.stderr.read()
    m.proc.wait(10)
    print(f"fusermount3 -uz with 3 waiting readers: they and the daemon ended in "
          f"{(time.monotonic() - t0) * 1000:.0f} ms")
    assert time.monotonic() - t0 < 2.5


def test_cancel_ends_readers_with_ecanceled(mnt, fake, slow):
    eid = execute(mnt, slow)
    path = mnt.p("executions", eid, "results.csv")
    errors = []

    def reader():
        try:
            open(path, "rb").read()
        except OSError as e:
            errors.append(e.errno)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.5)
    with open(mnt.p("executions", eid, "cancel"), "w") as f:
        f.write("1\n")
    t.join(20)
    assert errors == [errno.ECANCELED]
    assert open(mnt.p("executions", eid, "status")).read() == "cancelled\n"
    assert len(requests_for(fake, "cancel", eid)) == 1
