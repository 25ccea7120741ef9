"""Several daemons on one cache directory share it: one download of a result
whoever reads it and through whichever mount, one index of queries and
executions, one cache_size.

test_shared_cache.py has the ground rules (nothing corrupt, a live download
left alone by a starting daemon, a dead daemon's *.part removed at the next
start, two daemons following one download); this file has sharing at scale:
four daemons, a follower reading as the bytes land, an owner killed
mid-download, the index, the cache cap across daemons, and a daemon started
during a download.

The races are made deterministic with a gate: a request of the fake held
until the test releases it (dune: page 3 of 5, before its answer; redash: the
one CSV document, after half its body), the spot where stall_download (conftest)
holds a download, but for exactly as long as the test wants instead of a
number of seconds. Nothing here is timed: every wait is a wait_for with a
generous limit.
"""
import os
import subprocess
import threading
import time

import pytest

import fake_dune
from conftest import (execute, fake_csv, fault_at, kind_of, requests_for, run_elsewhere, wait_ended,
                      wait_for)

QID_BIG = 1005   # 5000 rows: dune 5 pages of 1000, redash one document
QID_SMALL = 1001  # 10 rows: every run the same size
HOLD_LIMIT = 60   # a gate never released (a broken test) lets go after this


# ---- the gate ------------------------------------------------------------------

class Gate:
    """One request of the fake, held until release()."""

    def __init__(self, seconds):
        self.seconds = seconds  # the fault's "seconds": the gate's name
        self.entered = threading.Event()
        self.released = threading.Event()

    def hold(self):
        self.entered.set()
        self.released.wait(HOLD_LIMIT)

    def holding(self):
        return self.entered.is_set() and not self.released.is_set()

    def release(self):
        self.released.set()


class _Clock:
    """fake_dune's `time` module, but a sleep of a gate's seconds (the fake's
    delay and stall_body faults sleep with time.sleep) waits for its gate."""

    def __init__(self, real, gates):
        self._real = real
        self._gates = gates

    def __getattr__(self, name):
        return getattr(self._real, name)

    def sleep(self, seconds):
        gate = self._gates.get(seconds)
        if gate is None:
            self._real.sleep(seconds)
        else:
            gate.hold()


@pytest.fixture
def gate(fake, mounts, monkeypatch):
    """gate() holds the next CSV download in the middle until .release():
    dune's page 3 of 5 gets no answer, redash's document stops after half its
    body. Set up after the mounts, so released before they are unmounted."""
    gates = {}
    monkeypatch.setattr(fake_dune, "time", _Clock(time, gates))

    def make():
        g = Gate(86400.0 + len(gates))
        gates[g.seconds] = g
        if kind_of(fake) == "dune":
            fake.add_fault(match="offset=2000", action="delay", seconds=g.seconds)
        else:
            fake.add_fault(**fault_at(fake, "csv"), action="stall_body", seconds=g.seconds)
        return g

    yield make
    for g in gates.values():
        g.release()


# ---- readers -------------------------------------------------------------------

class Reader:
    """A `cat` of one file of a mount, into a file of the test's."""

    def __init__(self, path, out):
        self.out = out
        with open(out, "wb") as f:
            self.proc = subprocess.Popen(["cat", path], stdout=f, stderr=subprocess.PIPE)

    def got(self):
        return os.path.getsize(self.out)

    def waiting(self):
        """Ended, or blocked in a request to a FUSE daemon."""
        if self.proc.poll() is not None:
            return True
        try:
            with open(f"/proc/{self.proc.pid}/wchan") as f:
                wchan = f.read().strip()
            return wchan == "request_wait_answer" or "fuse" in wchan
        except OSError:
            return self.proc.poll() is not None

    def finish(self, timeout=60):
        """(exit status, stderr, the bytes it read)."""
        _, err = self.proc.communicate(timeout=timeout)
        with open(self.out, "rb") as f:
            return self.proc.returncode, err.decode(errors="replace"), f.read()


@pytest.fixture
def readers(mounts, tmp_path):
    """readers(mount, eid, stream=False) starts a cat of the result's CSV;
    every cat still running at the end is killed before the unmounts."""
    started = []

    def make(m, eid, stream=False):
        parts = ("executions", eid, "stream", "results.csv") if stream else \
            ("executions", eid, "results.csv")
        r = Reader(m.p(*parts), tmp_path / f"{os.path.basename(m.path)}-{len(started)}.out")
        started.append(r)
        return r

    yield make
    for r in started:
        if r.proc.poll() is None:
            r.proc.kill()
        r.proc.communicate()


# ---- helpers -------------------------------------------------------------------

def wait_until(cond, what, timeout=10.0):
    """wait_for, failing with what was waited for (what(): said at the end)."""
    try:
        return wait_for(cond, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"not within {timeout:g} s: {what() if callable(what) else what}") \
            from None


def truth_of(fake, eid):
    """The API's CSV of a run, and how many requests one download of it takes
    (dune: its pages; redash: one document). The fake's log is cleared."""
    fake.reset()
    truth = fake_csv(fake, eid)
    requests = max(1, len(requests_for(fake, "results", eid)))
    fake.reset()
    return truth, requests


def ended_truth(fake, eid):
    """The API's CSV of a run started at the API, once it has ended."""
    def attempt():
        try:
            return fake_csv(fake, eid)
        except Exception:  # dune: 409 while it runs; redash: no result yet
            return None
    return wait_until(attempt, f"the run {eid} ends at the API", timeout=30)


def result_requests(fake, eid):
    return [(e["path"], e["query"]) for e in requests_for(fake, "results", eid)]


def assert_one_download(fake, eid, requests=None):
    """The fake saw at most one download of the result: one first request
    (dune: the page without an offset; redash: the document), no page asked
    for twice, and, when given, exactly `requests` requests."""
    seen = result_requests(fake, eid)
    starts = [q for q in seen if "offset=" not in q[1]]
    twice = sorted({q[1] for q in seen if seen.count(q) > 1})
    assert len(starts) == 1 and not twice, \
        f"the result was downloaded {len(starts)} times ({len(seen)} requests; asked for " \
        f"more than once: {twice})"
    if requests is not None:
        assert len(seen) == requests, f"{len(seen)} requests, one download is {requests}: {seen}"


def leftovers(cache, eid):
    """Files of an unfinished download of the result: its *.part, its lock."""
    return sorted(n for n in os.listdir(os.path.join(cache, "results"))
                  if n.startswith(f"{eid}.") and (n.endswith(".part") or n.endswith(".lock")))


def download_files(cache, eid):
    """{name: inode} of every file of the result in results/ but the result."""
    d = os.path.join(cache, "results")
    out = {}
    for n in os.listdir(d):
        if n.startswith(f"{eid}.") and n != f"{eid}.csv":
            try:
                out[n] = os.stat(os.path.join(d, n)).st_ino
            except FileNotFoundError:
                pass
    return out


def committed(cache, eid):
    path = os.path.join(cache, "results", f"{eid}.csv")
    wait_until(lambda: os.path.exists(path), f"results/{eid}.csv committed")
    with open(path, "rb") as f:
        return f.read()


def complete_results(cache):
    """{name: size} of the complete results in the cache directory."""
    d = os.path.join(cache, "results")
    sizes = {}
    for n in os.listdir(d):
        if n.startswith(".") or n.endswith(".part") or n.endswith(".lock"):
            continue
        try:
            sizes[n] = os.path.getsize(os.path.join(d, n))
        except FileNotFoundError:
            pass  # evicted while listed
    return sizes


def next_second():
    """Waits for the clock's next second, so that opens this far apart are
    ordered even where the last use is kept in whole seconds (result.c's
    time(NULL)) or in a file's timestamp."""
    now = int(time.time())
    wait_for(lambda: int(time.time()) > now, timeout=5, step=0.01)


def kill9(m):
    """kill -9 of a mount's daemon; its mount goes (the daemon cannot)."""
    m.proc.kill()
    m.proc.wait(10)
    subprocess.run(["fusermount3", "-uz", m.path], capture_output=True)


def last_of(m, qid):
    try:
        return os.path.basename(os.readlink(m.p("queries", str(qid), "last")))
    except OSError:
        return None


def status_of(m, eid):
    with open(m.p("executions", eid, "status")) as f:
        return f.read().strip()


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- 1. one download across daemons ---------------------------------------------

def test_four_daemons_reading_one_result_download_it_once(fake, mounts, gate, readers):
    a = mounts(name="a")
    daemons = [a] + [mounts(name=n, cache_dir=a.cache) for n in ("b", "c", "d")]
    eid = execute(a, QID_BIG)
    wait_ended(a, eid)
    truth, one_download = truth_of(fake, eid)
    for m in daemons:  # each knows the run, so that its open is what waits below
        assert os.stat(m.p("executions", eid, "results.csv")).st_size == 0
    fake.reset()
    held = gate()
    cats = [readers(m, eid) for m in daemons]  # whole-file opens, all at once
    wait_until(held.holding, "a download of the result reaches the fake")
    # every open reached its daemon while the download is held mid-way
    wait_until(lambda: all(c.waiting() for c in cats), "every reader waits in its mount")
    held.release()
    for m, c in zip(daemons, cats):
        rc, err, got = c.finish()
        assert rc == 0, f"{m.path}: {err}"
        assert got == truth, f"{m.path}: {len(got)} bytes, the API's result is {len(truth)}"
    assert_one_download(fake, eid, one_download)
    assert committed(a.cache, eid) == truth
    for m in daemons:
        assert os.stat(m.p("executions", eid, "results.csv")).st_size == len(truth)
    wait_until(lambda: not leftovers(a.cache, eid), "no *.part or lock file left")


# ---- 2. a follower reads as the bytes land ---------------------------------------

def followed_download(fake, mounts, gate, readers):
    """Daemons a and b on one cache directory; a's stream reader of a finished
    run has its first bytes and the rest of a's download is held; b's stream
    reader has the first bytes too. Returns (a, b, eid, truth, one download's
    requests, the gate, a's reader, b's reader)."""
    a = mounts(name="a")
    b = mounts(name="b", cache_dir=a.cache)
    eid = execute(a, QID_BIG)
    wait_ended(a, eid)
    truth, one_download = truth_of(fake, eid)
    held = gate()
    first = readers(a, eid, stream=True)
    wait_until(lambda: held.holding() and first.got() > 0, "a's reader has bytes, the rest held")
    assert not os.path.exists(os.path.join(a.cache, "results", f"{eid}.csv"))
    second = readers(b, eid, stream=True)
    wait_until(lambda: second.got() > 0 or second.proc.poll() is not None,
               "b's stream reader gets the first bytes while the download is held")
    return a, b, eid, truth, one_download, held, first, second


def test_a_follower_streams_the_bytes_as_they_land(fake, mounts, gate, readers):
    a, b, eid, truth, one_download, held, first, second = followed_download(fake, mounts, gate,
                                                                            readers)
    assert held.holding()
    # b's bytes came from a's download: no second request for the result
    assert_one_download(fake, eid)
    assert second.proc.poll() is None  # the rest is still to come
    held.release()
    for m, r in ((a, first), (b, second)):
        rc, err, got = r.finish()
        assert rc == 0, f"{m.path}: {err}"
        assert got == truth, f"{m.path}: {len(got)} bytes, the API's result is {len(truth)}"
    assert_one_download(fake, eid, one_download)
    assert committed(a.cache, eid) == truth


# ---- 3. the owner dies -------------------------------------------------------------

def test_the_owner_killed_mid_download_a_follower_takes_over(fake, mounts, gate, readers):
    a, b, eid, truth, _, held, owner, streamed = followed_download(fake, mounts, gate, readers)
    whole = readers(b, eid)  # and an open that waits for the whole file
    wait_until(whole.waiting, "b's whole-file reader waits")
    assert_one_download(fake, eid)  # b follows a: it has not downloaded
    kill9(a)
    held.release()  # a's request, answered to nobody
    assert owner.finish()[0] != 0  # its mount is gone
    for r in (streamed, whole):
        rc, err, got = r.finish()
        assert rc == 0, err
        assert got == truth, f"{len(got)} bytes, the API's result is {len(truth)}"
    assert committed(a.cache, eid) == truth
    wait_until(lambda: not leftovers(a.cache, eid),
               lambda: f"a's unfinished download cleared once b is done: {leftovers(a.cache, eid)}")
    assert read(b.p("executions", eid, "results.csv")) == truth


# ---- 4. one index ------------------------------------------------------------------

def test_the_index_is_shared_and_merged(fake, mounts):
    a = mounts(name="a")
    b = mounts(name="b", cache_dir=a.cache)
    ea = execute(a, QID_SMALL)
    # b lists a's run without being asked about it (nothing in b looks it up first)
    wait_until(lambda: ea in os.listdir(b.p("executions")), "b's `ls executions` lists a's run")
    wait_until(lambda: last_of(b, QID_SMALL) == ea, "b's queries/<qid>/last is a's run")
    wait_ended(a, ea)
    eb = execute(b, QID_SMALL)
    assert eb != ea
    wait_until(lambda: eb in os.listdir(a.p("executions")), "a's `ls executions` lists b's run")
    wait_until(lambda: last_of(a, QID_SMALL) == eb, "a's queries/<qid>/last is b's run")
    wait_ended(b, eb)
    # each knows how the other's run ended
    wait_until(lambda: status_of(a, eb) == "success", "a: b's run succeeded")
    wait_until(lambda: status_of(b, ea) == "success", "b: a's run succeeded")
    # a writes its index entry of the query again (latest is checked): b's last stays
    read(a.p("queries", str(QID_SMALL), "latest.csv"))
    assert last_of(a, QID_SMALL) == eb
    a.stop()
    b.stop()
    c = mounts(name="c", cache_dir=a.cache)
    fake.reset()
    assert last_of(c, QID_SMALL) == eb, "the newest run is last after a remount"
    listed = os.listdir(c.p("executions"))
    assert ea in listed and eb in listed, listed
    assert status_of(c, ea) == "success" and status_of(c, eb) == "success"
    assert requests_for(fake, "status", ea) == [] and requests_for(fake, "status", eb) == []


# ---- 5. one cache_size ---------------------------------------------------------------

def test_cache_size_is_one_cap_least_recently_opened_across_daemons(fake, mounts):
    runs, truth = [], {}
    for _ in range(4):  # one after the other: redash hands identical runs at once one job
        eid = run_elsewhere(fake, QID_SMALL)
        truth[eid] = ended_truth(fake, eid)
        runs.append(eid)
    r1, r2, r3, r4 = runs
    sizes = sorted(len(t) for t in truth.values())
    cap = sizes[0] * 7 // 2  # room for three results, not four
    assert sum(sizes[1:]) <= cap < sum(sizes)
    a = mounts(name="a", options=[f"cache_size={cap}"])
    b = mounts(name="b", cache_dir=a.cache, options=[f"cache_size={cap}"])

    def use(m, eid):
        assert read(m.p("executions", eid, "results.csv")) == truth[eid]

    def held_runs():
        """Which of r1..r4 the cache holds, with the bytes of all it holds."""
        names = complete_results(a.cache)
        return ([f"r{i}" for i, r in enumerate(runs, 1) if f"{r}.csv" in names],
                sum(names.values()))

    use(a, r1)
    next_second()
    use(b, r2)
    next_second()
    use(a, r3)
    next_second()
    fake.reset()
    use(b, r1)  # opened again, through the other daemon: now the most recent
    assert requests_for(fake, "results", r1) == []  # from the cache
    wait_until(lambda: held_runs()[0] == ["r1", "r2", "r3"],
               lambda: f"three results fit: the cache holds {held_runs()}, cap {cap}")
    next_second()
    use(b, r4)
    # four results pass the cap: r2 goes, the least recently opened by either daemon
    wait_until(lambda: f"{r2}.csv" not in complete_results(a.cache),
               lambda: f"r2 evicted; the cache holds {held_runs()}, cap {cap}")
    assert set(complete_results(a.cache)) == {f"{r}.csv" for r in (r1, r3, r4)}
    assert sum(complete_results(a.cache).values()) <= cap
    # every result reads right through both mounts; an evicted one is downloaded again
    for m in (a, b):
        for eid in runs:
            use(m, eid)
            wait_until(lambda: sum(complete_results(a.cache).values()) <= cap,
                       lambda: f"the cache under {cap} bytes: {held_runs()}")


# ---- 6. a daemon started during a download -------------------------------------------

def test_a_daemon_started_mid_download_follows_it_and_a_dead_ones_files_go(
        fake, mounts, gate, readers):
    # beside test_shared_cache.py's tests of the same start (*.part only): the
    # download's lock file too, and the new daemon follows the live download
    a = mounts(name="a")
    eid = execute(a, QID_BIG)
    wait_ended(a, eid)
    truth, one_download = truth_of(fake, eid)
    held = gate()
    first = readers(a, eid, stream=True)
    wait_until(lambda: held.holding() and first.got() > 0, "a's reader has bytes, the rest held")
    live = download_files(a.cache, eid)
    assert live
    c = mounts(name="c", cache_dir=a.cache)  # its start cleans the cache directory
    assert download_files(a.cache, eid) == live, "a live download's files are left alone"
    second = readers(c, eid)
    wait_until(second.waiting, "c's reader waits")
    assert_one_download(fake, eid)
    held.release()
    for m, r in ((a, first), (c, second)):
        rc, err, got = r.finish()
        assert rc == 0, f"{m.path}: {err}"
        assert got == truth, f"{m.path}: {len(got)} bytes, the API's result is {len(truth)}"
    assert_one_download(fake, eid, one_download)
    assert committed(a.cache, eid) == truth
    wait_until(lambda: not leftovers(a.cache, eid), "the download's files go with its commit")

    # a download whose daemon is killed, nobody following: the next start clears it
    e2 = execute(a, QID_BIG)
    wait_ended(a, e2)
    truth2, _ = truth_of(fake, e2)
    held2 = gate()
    dying = readers(a, e2, stream=True)
    wait_until(lambda: held2.holding() and dying.got() > 0, "a's second download is held")
    kill9(a)
    held2.release()
    dying.finish()
    assert leftovers(a.cache, e2), "the killed daemon's download stays behind"
    d = mounts(name="d", cache_dir=a.cache)
    assert leftovers(a.cache, e2) == [], "the next start removes the dead download's files"
    assert read(d.p("executions", e2, "results.csv")) == truth2
    assert read(c.p("executions", e2, "results.csv")) == truth2
