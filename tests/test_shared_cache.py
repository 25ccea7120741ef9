"""Several daemons on one cache directory (an fstab mount and a manual one, two
users' mounts of one source, containers sharing a volume): never corrupt.

A download is claimed through results/<eid>.<ext>.lock: the daemon holding its
lock downloads into a file of its own (results/<eid>.<ext>.<pid>-<n>.part,
locked while the download runs) and commits by rename; the others follow that
file as it grows. A second daemon never truncates, removes or commits another's
download, and a daemon's start removes only downloads whose owner is gone. The
races are made deterministic with the fake's stall: one download is held in the
middle while the other daemon acts. Sharing at scale (4 daemons, the index,
cache_size) is in test_shared_daemons.py.
"""
import os
import subprocess

from conftest import (execute, fake_csv, fault_at, kind_of, requests_for, stall_download, wait_ended,
                      wait_for)


def parts(cache, eid):
    return [n for n in os.listdir(os.path.join(cache, "results"))
            if n.startswith(f"{eid}.csv.") and n.endswith(".part")]


def committed(cache, eid):
    """The result's file in the cache, once committed."""
    path = os.path.join(cache, "results", f"{eid}.csv")
    wait_for(lambda: os.path.exists(path))
    with open(path, "rb") as f:
        return f.read()


def cat(m, eid, out):
    return subprocess.Popen(["cat", m.p("executions", eid, "stream", "results.csv")],
                            stdout=open(out, "wb"), stderr=subprocess.PIPE)


def hold_next_first_page(fake, seconds):
    """The next download to start waits `seconds` before its first byte (its
    file is already made: an older execfs truncated the other's then)."""
    if kind_of(fake) == "dune":
        fake.add_fault(match="csv?limit=", action="delay", seconds=seconds)
    else:
        fake.add_fault(**fault_at(fake, "csv"), action="delay", seconds=seconds)


def test_two_daemons_reading_one_result_both_get_every_byte(fake, mounts, tmp_path):
    a = mounts(name="a")
    b = mounts(name="b", cache_dir=a.cache)
    eid = execute(a, 1005)
    wait_ended(a, eid)
    truth = fake_csv(fake, eid)
    before = len(requests_for(fake, "results", eid))  # fake_csv's own
    stall_download(fake, 2)
    first = cat(a, eid, tmp_path / "a.out")
    wait_for(lambda: parts(a.cache, eid))  # a's download is under way, held mid-body
    hold_next_first_page(fake, 4)  # a second download, if any, would be held too
    second = cat(b, eid, tmp_path / "b.out")  # b follows a's file
    assert first.wait(60) == 0
    assert second.wait(60) == 0
    assert (tmp_path / "a.out").read_bytes() == truth
    assert (tmp_path / "b.out").read_bytes() == truth
    assert committed(a.cache, eid) == truth
    wait_for(lambda: not parts(a.cache, eid))
    # one download: no page asked for twice (a second one starts at page 1)
    pages = [(e["path"], str(e.get("query"))) for e in requests_for(fake, "results", eid)[before:]]
    assert pages and len(pages) == len(set(pages)), pages
    # each mount serves the result whole, then and after a remount
    assert open(a.p("executions", eid, "results.csv"), "rb").read() == truth
    assert open(b.p("executions", eid, "results.csv"), "rb").read() == truth
    a.stop()
    b.stop()
    c = mounts(name="c", cache_dir=a.cache)
    fake.reset()
    assert open(c.p("executions", eid, "results.csv"), "rb").read() == truth
    assert not [e for e in fake.log() if "/results" in e["path"]]


def held_download(mounts, fake, tmp_path, seconds):
    """Mount a, a run of its, and a's download of it held in the middle:
    (a, eid, the reading cat, the download's file names)."""
    a = mounts(name="a")
    eid = execute(a, 1005)
    wait_ended(a, eid)
    stall_download(fake, seconds)
    reader = cat(a, eid, tmp_path / "a.out")
    return a, eid, reader, wait_for(lambda: parts(a.cache, eid))


def test_a_daemon_starting_leaves_a_live_download_alone(fake, mounts, tmp_path):
    a, eid, reader, live = held_download(mounts, fake, tmp_path, 3)
    truth = fake_csv(fake, eid)
    mounts(name="b", cache_dir=a.cache)  # its start cleans the cache directory
    assert parts(a.cache, eid) == live  # not the live download
    assert reader.wait(60) == 0
    assert (tmp_path / "a.out").read_bytes() == truth
    assert committed(a.cache, eid) == truth


def test_a_dead_daemons_download_is_removed_at_the_next_start(fake, mounts, tmp_path):
    a, eid, reader, _ = held_download(mounts, fake, tmp_path, 5)
    a.proc.kill()  # kill -9: the download's file stays behind, unlocked
    a.proc.wait()
    subprocess.run(["fusermount3", "-uz", a.path], capture_output=True)
    reader.wait(10)
    assert parts(a.cache, eid)
    b = mounts(name="b", cache_dir=a.cache)
    assert not parts(a.cache, eid)
    assert open(b.p("executions", eid, "results.csv"), "rb").read() == fake_csv(fake, eid)
