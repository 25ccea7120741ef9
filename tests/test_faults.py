"""Faults around latest.*, the daemon and the network: interrupted and timed-out
opens, a daemon killed mid-download, an API that comes back, one log line a
failure, writes that must send nothing."""
import errno
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import (Mount, execute, fake_csv, fake_latest_csv, fault_at, kind_of, new_key,
                      requests_for, wait_for)
from fake_dune import FakeDune
from fake_redash import FakeRedash


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_ctrl_c_ends_a_waiting_latest_open(mnt, fake):
    fake.add_fault(**fault_at(fake, "latest", 1001), action="delay", seconds=3)
    cat = subprocess.Popen(["cat", mnt.p("queries", "1001", "latest.csv")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    assert cat.poll() is None  # parked in open while the API is slow
    t0 = time.monotonic()
    cat.send_signal(signal.SIGINT)
    cat.wait(5)
    assert cat.returncode == -signal.SIGINT and time.monotonic() - t0 < 1.0
    # the shared request went on; the next open is answered from it
    assert read(mnt.p("queries", "1001", "latest.csv")) == fake_latest_csv(fake, 1001)
    assert len(requests_for(fake, "latest", 1001)) == 1


def test_latest_open_times_out(mounts, fake):
    m = mounts(options=["timeout=1"])
    fake.add_fault(**fault_at(fake, "latest", 1001), action="delay", seconds=3)
    t0 = time.monotonic()
    out = subprocess.run(["cat", m.p("queries", "1001", "latest.csv")], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0 and "Connection timed out" in out.stderr
    assert 0.9 < time.monotonic() - t0 < 2.9


def test_kill_9_mid_download_then_remount(mounts, fake):
    m = mounts()
    eid = execute(m, 1005)
    open(m.p("executions", eid, "status")).read()
    wait_for(lambda: open(m.p("executions", eid, "status")).read() == "success\n")
    # the download stalls after its first bytes (dune: page 3; redash: the body)
    stall = {"match": "offset=2000"} if kind_of(fake) == "dune" else fault_at(fake, "csv")
    fake.add_fault(**stall, action="delay", seconds=5)
    reader = subprocess.Popen(["cat", m.p("executions", eid, "results.csv")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = os.path.join(m.cache, "results")
    wait_for(lambda: f"{eid}.csv.part" in os.listdir(results))
    m.proc.kill()  # kill -9: no chance to clean up
    m.proc.wait()
    subprocess.run(["fusermount3", "-uz", m.path], capture_output=True)
    reader.wait(10)
    assert reader.returncode != 0  # the reader got an error, not a short file
    fake.reset()
    m2 = mounts(name="mnt2", cache_dir=m.cache)
    assert not [n for n in os.listdir(results) if n.endswith(".part")]  # never served
    assert eid in os.listdir(m2.p("executions"))  # the index is intact
    assert read(m2.p("executions", eid, "results.csv")) == fake_csv(fake, eid)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_api_unreachable_then_back_without_remount(backend, tmp_path):
    port = free_port()
    cls = FakeRedash if backend == "redash" else FakeDune
    fake = cls(key=new_key(backend), port=port, time_scale=0.2)
    m = Mount(fake, tmp_path, source=f"{backend}:http://127.0.0.1:{port}")
    m.start()
    try:
        with pytest.raises(OSError) as e:
            read(m.p("queries", "1001", "latest.csv"))
        assert e.value.errno == errno.EIO
        assert "API unreachable" in m.log()
        fake.start()  # the API comes back on the same address
        try:
            assert read(m.p("queries", "1001", "latest.csv")) == fake_latest_csv(fake, 1001)
            eid = execute(m, 1001)
            assert read(m.p("executions", eid, "results.csv")) == fake_csv(fake, eid)
        finally:
            fake.stop()
    finally:
        m.stop()


def test_one_log_line_per_failure(mnt, fake):
    eid = execute(mnt, 1004)
    for _ in range(3):
        with pytest.raises(OSError):
            read(mnt.p("executions", eid, "results.csv"))
    lines = [line for line in mnt.log().splitlines() if f"executions/{eid}" in line and "error" in line]
    assert len(lines) == 1 and "the run failed: line 1:8" in lines[0]


def test_truncating_cancel_sends_nothing(mnt, fake):
    eid = execute(mnt, 1002)
    subprocess.run(["bash", "-c", f": > {mnt.p('executions', eid, 'cancel')}"], capture_output=True)
    assert requests_for(fake, "cancel", eid) == []
    assert read(mnt.p("executions", eid, "status")) in (b"pending\n", b"running\n")
