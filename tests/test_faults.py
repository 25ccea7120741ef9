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
    wait_for(lambda: [n for n in os.listdir(results) if n.startswith(f"{eid}.csv.") and n.endswith(".part")])
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


SLOW = {"id": 2001, "name": "slow for tests",
        "columns": [{"name": "n", "type": "integer"}, {"name": "name", "type": "varchar"}],
        "generate_rows": 5, "pending_seconds": 2.0, "run_seconds": 25.0, "prior_runs": 0}
# with the fixture's time scale of 0.2 this run takes 5 s


def start_cat(path):
    return subprocess.Popen(["cat", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def interrupt_all(cats):
    """SIGINT to every reader at once; the seconds until the last one ended."""
    t0 = time.monotonic()
    for c in cats:
        c.send_signal(signal.SIGINT)
    for c in cats:
        c.wait(10)
    return time.monotonic() - t0


def test_sigint_to_100_waiting_readers_leaves_the_poll_to_the_others(mounts, fake):
    fake.add_query(SLOW)
    m = mounts()
    eid = execute(m, SLOW["id"])
    path = m.p("executions", eid, "results.csv")
    others = [start_cat(path) for _ in range(3)]
    cats = [start_cat(path) for _ in range(100)]
    time.sleep(1.0)
    assert all(c.poll() is None for c in cats + others)  # all parked
    elapsed = interrupt_all(cats)
    print(f"SIGINT to 100 waiting readers: the last ended after {elapsed * 1000:.0f} ms")
    assert all(c.returncode == -signal.SIGINT for c in cats)
    assert elapsed < 2.0  # the issue asks 1 s; this allows for a loaded CI machine
    assert all(c.poll() is None for c in others)
    outs = [c.communicate(timeout=60)[0] for c in others]
    assert outs == [fake_csv(fake, eid)] * 3
    assert requests_for(fake, "cancel", eid) == []
    assert fake.executions()[str(SLOW["id"])] == 1


def test_sigint_to_readers_mid_download_leaves_the_download_to_the_others(mnt, fake):
    eid = execute(mnt, 1005)
    wait_for(lambda: read(mnt.p("executions", eid, "status")) == b"success\n")
    # the download is under way and slow: the result's first response waits 2 s
    fake.add_fault(**fault_at(fake, "csv"), action="delay", seconds=2)
    path = mnt.p("executions", eid, "results.csv")
    others = [start_cat(path) for _ in range(3)]
    cats = [start_cat(path) for _ in range(50)]
    time.sleep(0.7)
    assert all(c.poll() is None for c in cats + others)
    elapsed = interrupt_all(cats)
    print(f"SIGINT to 50 readers of a download: the last ended after {elapsed * 1000:.0f} ms")
    assert all(c.returncode == -signal.SIGINT for c in cats)
    outs = [c.communicate(timeout=60)[0] for c in others]
    # one download: every request for the result was made once
    paths = [e["path"] + "?" + (e.get("query") or "") for e in requests_for(fake, "results", eid)]
    assert len(paths) == len(set(paths)), paths
    want = fake_csv(fake, eid)
    assert outs == [want] * 3
    assert read(path) == want


def tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                   check=True)


def umount(path):
    subprocess.run(["umount", "-l", path], capture_output=True)


BIG = {"id": 2002, "name": "bigger than the cache's disk",
       "columns": [{"name": "n", "type": "integer"}, {"name": "pad", "type": "varchar"}],
       "generate_rows": 40000, "pending_seconds": 1.0, "run_seconds": 1.0, "prior_runs": 0}


def test_cache_dir_full_is_an_error_and_leaves_no_corrupt_entry(fake, tmp_path):
    cache = str(tmp_path / "cache")
    tmpfs(cache, "256k")
    m = Mount(fake, tmp_path, cache_dir=cache)
    try:
        fake.add_query(BIG)
        m.start()
        eid = execute(m, BIG["id"])
        small = execute(m, 1001)
        wait_for(lambda: read(m.p("executions", eid, "status")) == b"success\n")
        want = fake_csv(fake, eid)
        assert len(want) > 512 * 1024
        for _ in range(2):  # and again: the failure is not remembered as a result
            with pytest.raises(OSError) as e:
                read(m.p("executions", eid, "results.csv"))
            assert e.value.errno in (errno.ENOSPC, errno.EIO), e.value
        assert not any(name.startswith(eid) for name in os.listdir(os.path.join(cache, "results")))
        assert any("No space left on device" in line for line in m.log().splitlines())
        # a result that fits is still served, and the mount recovers once there is room
        assert read(m.p("executions", small, "results.csv")) == fake_csv(fake, small)
        subprocess.run(["mount", "-o", "remount,size=64m", cache], check=True)
        assert read(m.p("executions", eid, "results.csv")) == want
        m.stop()
        # the index is intact: a remount on the same cache knows both runs
        m2 = Mount(fake, tmp_path, cache_dir=cache, name="mnt2")
        m2.start()
        try:
            assert {eid, small} <= set(os.listdir(m2.p("executions")))
            want_small = fake_csv(fake, small)
            before = len(fake.log())
            assert read(m2.p("executions", eid, "results.csv")) == want
            assert read(m2.p("executions", small, "results.csv")) == want_small
            assert len(fake.log()) == before  # both from the cache
        finally:
            m2.stop()
    finally:
        m.stop()
        umount(cache)


def test_cache_dir_full_for_the_index_loses_no_run(fake, tmp_path):
    """The disk is full before execute: the run starts (it is paid for), its id
    is still known to the mount, and reading it is an error, never a short file."""
    cache = str(tmp_path / "cache")
    tmpfs(cache, "64k")
    m = Mount(fake, tmp_path, cache_dir=cache)
    try:
        m.start()
        filler = os.path.join(cache, "filler")
        with open(filler, "wb") as f:
            try:
                f.write(b"x" * (128 * 1024))
            except OSError:
                pass
        eid = execute(m, 1001)
        assert eid in os.listdir(m.p("executions"))
        with pytest.raises(OSError) as e:
            read(m.p("executions", eid, "results.csv"))
        assert e.value.errno in (errno.ENOSPC, errno.EIO)
        os.unlink(filler)
        assert read(m.p("executions", eid, "results.csv")) == fake_csv(fake, eid)
    finally:
        m.stop()
        umount(cache)


def restartable_fake(backend, **settings):
    cls = FakeRedash if backend == "redash" else FakeDune
    return cls(key=new_key(backend), port=free_port(), time_scale=0.2, **settings)


def test_api_down_mid_run_then_back(backend, tmp_path):
    """The API goes away while readers wait on a run and comes back 2 s later:
    the status poll retries with backoff and the readers get every byte."""
    fake = restartable_fake(backend)
    fake.start()
    fake.add_query(SLOW)
    m = Mount(fake, tmp_path).start()
    try:
        eid = execute(m, SLOW["id"])
        cats = [start_cat(m.p("executions", eid, "results.csv")) for _ in range(3)]
        time.sleep(0.5)
        fake.stop()
        time.sleep(2.0)
        assert all(c.poll() is None for c in cats)  # still waiting, not failed
        fake.start()
        outs = [c.communicate(timeout=60)[0] for c in cats]
        assert outs == [fake_csv(fake, eid)] * 3
        assert "retrying" in m.log()
    finally:
        m.stop()
        fake.stop()


def test_api_down_mid_download_then_back(backend, tmp_path):
    """The API goes away in the middle of a result's download (the connection
    is closed under it) and comes back: the download carries on or starts again,
    and the reader gets the bytes of an undisturbed run, never a short file."""
    fake = restartable_fake(backend)
    fake.start()
    m = Mount(fake, tmp_path).start()
    try:
        eid = execute(m, 1005)
        wait_for(lambda: read(m.p("executions", eid, "status")) == b"success\n")
        want = fake_csv(fake, eid)
        # dune: page 2 of 3 waits; redash: the one document waits
        stall = {"match": "offset=2000"} if backend == "dune" else fault_at(fake, "csv")
        fake.add_fault(**stall, action="delay", seconds=3)
        cat = start_cat(m.p("executions", eid, "results.csv"))
        wait_for(lambda: any(e.get("fault") == "delay" for e in fake.log()))
        fake.stop()  # closes every connection, the waiting one too
        time.sleep(1.0)
        fake.reset()
        fake.start()
        out, _ = cat.communicate(timeout=60)
        assert cat.returncode == 0 and out == want
        assert read(m.p("executions", eid, "results.csv")) == want
    finally:
        m.stop()
        fake.stop()
