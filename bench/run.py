#!/usr/bin/env python3
"""Benchmark suite: execfs against baselines measured side by side, in the same run.

    /usr/bin/python3 bench/run.py [--size-mb 500] [--readers 1000] [--only NAME,...]

Starts tests/fake_dune.py in a process of its own (in-process, its GIL would
skew the timings) with one big query, 4001 (columns n, name, value, day,
address, token, amount: about 100 bytes of CSV a row, size_mb * 10^4 rows,
pages of 32000 rows, "memo_pages": each page is kept in memory once served),
and a one-row query 4002 for the metadata figure. Before any figure, the CSV
pages of 4001's latest execution are walked once, untimed, with the URLs
execfs uses: that fills the fake's memo (so that both execfs and the baselines
are served at memory speed) and gives the expected bytes (pages joined, header
once) and their sha256. Mounts are conftest.Mount (EXECFS_BIN selects the
binary), each with a fresh cache directory and max_age=3600, and are always
unmounted. MB = 10^6 bytes. When every figure chosen is one of rss_lookups
and rss_index, which never read 4001, the walk is skipped.

The figures (--only takes their names):

  cold      `cat latest.csv > /dev/null` on a fresh mount, in MB/s (median of
            3 fresh mounts; the samples get a row of their own). Baseline: one
            `curl -K cfg` process fetching every page URL in turn over one
            kept-alive connection (median of 3). ratio = curl time / execfs
            time; target >= 0.9. Each cached file's sha256 must be the expected one.
  warm      the same `cat` again on that mount (best of 3), against `cat` of the
            cached file itself, results/<eid>.csv (best of 3). ratio = cache
            time / execfs time; target >= 0.9.
  ttfb      `head -c 100 stream/latest.csv` on a fresh mount (wall time of the process,
            median of 3 mounts); its bytes must be the expected ones. Baseline:
            the fake's time to first byte for page 1 (curl's time_starttransfer,
            median of 5). execfs needs two requests (which execution is latest,
            then page 1), so a second row compares with the fake's TTFB for the
            latest lookup plus page 1. ratio = execfs / baseline; target < 2.
  fanin     64 concurrent `cmp latest.csv expected.csv` on a fresh mount
            (each reader checks every byte; expected.csv is the API's CSV,
            written by the bench): the fake must see exactly one download (CSV
            requests = pages). Baseline: one such reader on another fresh
            mount. ratio = 64 readers / 1 reader; target <= 1.2. Twice: with
            the fake at memory speed, where 64 readers copying 64 x the result
            on this machine's 2 cores cost far more than one download, and
            with the fake at FANIN_RATE_MB_S (a fast network), where the
            download is what takes the time. A reference row (no target)
            times 64 `cmp` of the cached file itself: the machine's floor.
  parked    bench/parked_readers.py --readers N as a subprocess, its rows
            folded in: threads <= 16, CPU near 0 (<= 10 ticks in 5 s), SIGINT
            to all readers < 1 s, status requests no more than one poller makes.
  memory    the daemon's peak RSS (VmHWM) right after the cold read (the
            highest of the 3 mounts); target <= 64 MB.
  metadata  median of 20 `ls -l queries/4001` and of 10 `ls -l executions`
            after 1000 runs of 4002 started through the mount's execute file;
            target < 50 ms each, and no request to the fake while listing.
  official  bench/official_client.py (what Dune's official clients do: every
            JSON page's rows kept in memory, then written as CSV) against `cp
            latest.csv` on a fresh mount: wall time, and peak memory (the
            client's max RSS; the daemon's VmHWM plus cp's max RSS). The JSON
            pages are walked once beforehand, untimed, to fill the fake's memo.
            ratio = official / execfs; target: execfs lower on both (ratio > 1).
  rss_lookups  on a fresh mount, LOOKUPS (100,000) lookups of random names from
            LOOKUP_THREADS threads, stat and lstat in turn: half `queries/<qid>`
            with random numeric qids (answered with no request), half
            `executions/<eid>` with random ids the API does not know (each one
            status request, a 404, ENOENT). The daemon's VmRSS (/proc/<pid>/status,
            the resident size now, not the peak) before and after, in MB;
            target: after <= 64 MB. A second row (no target): the requests the
            fake saw during the lookups, the lookups' time and their outcomes.
            About 20 s.
  rss_index INDEX_RUNS (10,000) runs of 4002 started through a fresh mount's
            execute file (as metadata starts its 1000), the daemon's VmRSS
            then (a row, no target); unmounted, and a fresh daemon mounted on
            the same cache directory runs `ls -l executions`, `ls -l
            queries/4002` and a stat of every run's executions/<eid>/status:
            its VmRSS after that, in MB; target <= 64 MB. The row also gives
            the listings' times and the requests the fake saw meanwhile.
            About 15 s. Both rss figures clear the fake's request log (it
            keeps at most 100,000 entries) before and after.

Each row goes to stderr as it is measured; the table is printed at the end.
Exit status 1 if a figure could not be measured (an error, wrong bytes).
"""
import argparse
import contextlib
import errno
import hashlib
import json
import os
import pathlib
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

BENCH = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from conftest import Mount, execute  # noqa: E402
from localfake import LocalFake, proc_status  # noqa: E402

BIG, SMALL = 4001, 4002
PAGE_ROWS = 32000
FANIN_READERS = 64
# the fan-in figure's second row: a network slower than this machine copies 64 results
FANIN_RATE_MB_S = 20
COLD_SAMPLES = 3
LOOKUPS = 100_000       # rss_lookups: half queries/<qid>, half unknown executions/<eid>
LOOKUP_THREADS = 8
INDEX_RUNS = 10_000     # rss_index
MB = 1e6
COLUMNS = [
    {"name": "n", "type": "integer"},
    {"name": "name", "type": "varchar"},
    {"name": "value", "type": "double"},
    {"name": "day", "type": "timestamp"},
    {"name": "address", "type": "varchar"},
    {"name": "token", "type": "varchar"},
    {"name": "amount", "type": "uint256"},
]


VERDICTS = {True: "met", False: "MISSED", None: "", "error": "ERROR"}


class BenchError(Exception):
    pass


# ---- the fake, in a process of its own ----------------------------------------

class FakeProcess(LocalFake):
    """tests/fake_dune.py as a separate process (localfake.py), pages of
    PAGE_ROWS rows."""

    def __init__(self, workdir, queries):
        try:
            super().__init__(workdir, "dune", queries, "--max-page-rows", str(PAGE_ROWS))
        except RuntimeError as e:
            raise BenchError(str(e)) from None

    def get(self, url):
        """(body, headers with lower-case names) of an API GET."""
        req = urllib.request.Request(url, headers={"X-Dune-API-Key": self.key})
        with urllib.request.urlopen(req, timeout=600) as resp:
            return resp.read(), {k.lower(): v for k, v in resp.headers.items()}


# ---- small helpers --------------------------------------------------------------

def wall(argv, **kw):
    """Seconds a command takes, start to exit; it must succeed."""
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, **kw)
    return time.perf_counter() - t0


def vm_hwm_mb(pid):
    return proc_status(pid, "VmHWM") * 1024 / MB


def vm_rss_mb(pid):
    """The process's resident size now (VmRSS), not its peak."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / MB
    raise BenchError(f"no VmRSS for process {pid}")


def timed_max_rss(argv, workdir, **kw):
    """(wall seconds, max RSS in MB) of a command run under /usr/bin/time."""
    out = workdir / "time.out"
    t0 = time.perf_counter()
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(out)] + argv, check=True, **kw)
    seconds = time.perf_counter() - t0
    return seconds, int(out.read_text().split()[-1]) * 1024 / MB


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def wait_for_file(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise BenchError(f"{path} did not appear in {timeout} s")
        time.sleep(0.05)


def cmp_readers(path, expected, count):
    """Starts `cmp path expected` count times at once (each reader checks
    every byte, at memory speed); seconds until all ended. Wrong bytes raise.
    Not `cmp -s`: it calls files of different sizes different without reading
    them, and a result still downloading shows size 0."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["cmp", path, str(expected)], stdout=subprocess.DEVNULL)
             for _ in range(count)]
    try:
        for p in procs:
            p.wait(timeout=1800)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    seconds = time.perf_counter() - t0
    bad = sum(1 for p in procs if p.returncode)
    if bad:
        raise BenchError(f"{bad} of {count} readers got other bytes than the API's")
    return seconds


# ---- the run ----------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="execfs-bench-run-"))
        self.fake = None
        self.rows = []          # (figure, value, target, baseline, ratio, ok)
        self.daemon_logs = []   # (mount name, non-empty stderr of its daemon)
        self.cold = None        # what the cold read measured, see cold_read()
        self.cold_mount = None
        self.json_warm = False

    # -- set-up

    def start(self):
        rows = int(self.args.size_mb * MB / 100)
        queries = [
            {"id": BIG, "name": "big", "columns": COLUMNS, "generate_rows": rows,
             "memo_pages": True, "prior_runs": 1, "pending_seconds": 0, "run_seconds": 0},
            {"id": SMALL, "name": "one row", "columns": COLUMNS, "generate_rows": 1,
             "prior_runs": 0, "pending_seconds": 0, "run_seconds": 0},
        ]
        self.fake = FakeProcess(self.workdir, queries)
        if not self.args.walk_big:
            progress(f"fake on port {self.fake.port}; the chosen figures do not read {BIG}: "
                     "its pages are not walked")
            return
        body, _ = self.fake.get(f"{self.fake.base_url}/query/{BIG}/results?limit=1")
        self.eid = json.loads(body)["execution_id"]
        progress(f"fake on port {self.fake.port}, latest execution {self.eid}, {rows} rows; "
                 f"walking the CSV pages once (untimed) ...")
        t0 = time.perf_counter()
        url = f"{self.fake.base_url}/execution/{self.eid}/results/csv?limit={PAGE_ROWS}&allow_partial_results=true"
        self.pages, self.page_bytes, self.csv_size = [], 0, 0
        h = hashlib.sha256()
        self.expected = self.workdir / "expected.csv"
        expected = open(self.expected, "wb")
        while url:
            body, headers = self.fake.get(url)
            self.pages.append(url)
            self.page_bytes += len(body)
            if len(self.pages) == 1:
                self.csv_head = body[:100]
            else:
                body = body.split(b"\n", 1)[1]  # every page repeats the header row
            h.update(body)
            expected.write(body)
            self.csv_size += len(body)
            url = headers.get("x-dune-next-uri")
        expected.close()
        self.csv_sha = h.hexdigest()
        progress(f"  {len(self.pages)} pages, {self.csv_size / MB:.1f} MB of CSV, "
                 f"sha256 {self.csv_sha[:16]}..., {time.perf_counter() - t0:.1f} s")
        # curl's config: the key in a header (never in argv), then every page
        self.header_cfg = self.workdir / "header.curlrc"
        self.header_cfg.write_text(f'header = "X-Dune-API-Key: {self.fake.key}"\n')
        self.pages_cfg = self.workdir / "pages.curlrc"
        self.pages_cfg.write_text(self.header_cfg.read_text() + "".join(
            f'url = "{u}"\noutput = "/dev/null"\n' for u in self.pages))

    def warm_json(self):
        if self.json_warm:
            return
        progress("walking the JSON pages once (untimed) ...")
        t0 = time.perf_counter()
        url = f"{self.fake.base_url}/execution/{self.eid}/results?limit={PAGE_ROWS}&allow_partial_results=true"
        pages = 0
        while url:
            body, _ = self.fake.get(url)
            url = json.loads(body).get("next_uri")
            pages += 1
        progress(f"  {pages} pages, {time.perf_counter() - t0:.1f} s")
        self.json_warm = True

    def close(self):
        try:
            if self.cold_mount is not None:
                self._stop_mount("cold", *self.cold_mount)
                self.cold_mount = None
        finally:
            if self.fake is not None:
                self.fake.stop()
                err = self.fake.stderr_path.read_text(errors="replace").strip()
                if err:
                    self.daemon_logs.append(("fake_dune.py", err))
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- mounts

    def _stop_mount(self, name, m, tmp):
        try:
            m.stop()
        finally:
            # the routine lines (mounted, started execution, unmounted) are not news
            text = "\n".join(line for line in m.log().splitlines()
                             if line.strip() and not line.startswith("execfs: info: "))
            if text:
                self.daemon_logs.append((name, text))
            shutil.rmtree(tmp, ignore_errors=True)

    def new_mount(self, name):
        """(Mount, its tmp dir): a fresh cache directory, max_age=3600."""
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f"execfs-bench-{name}-"))
        m = Mount(self.fake, tmp, options=["max_age=3600"])
        try:
            m.start()
        except BaseException:
            self._stop_mount(name, m, tmp)
            raise
        return m, tmp

    @contextlib.contextmanager
    def fresh_mount(self, name):
        m, tmp = self.new_mount(name)
        try:
            yield m
        finally:
            self._stop_mount(name, m, tmp)

    def latest(self, m):
        return m.p("queries", str(BIG), "latest.csv")

    def latest_stream(self, m):
        """The streaming name: bytes served as they arrive."""
        return m.p("queries", str(BIG), "stream", "latest.csv")

    def cached(self, m):
        return os.path.join(m.cache, "results", f"{self.eid}.csv")

    def csv_requests(self):
        path = f"/api/v1/execution/{self.eid}/results/csv"
        return sum(1 for e in self.fake.log() if e["method"] == "GET" and e["path"] == path)

    # -- rows

    def row(self, figure, value, target="", baseline="", ratio="", ok=None):
        self.rows.append((figure, value, target, baseline, ratio, ok))
        verdict = VERDICTS[ok]
        progress(f"  {figure}: {value} | target {target} | baseline {baseline} | ratio {ratio} {verdict}")

    def cold_read(self):
        """The cold read: COLD_SAMPLES fresh mounts in turn (one sample is too
        noisy on a small machine), the last kept for warm, memory and
        metadata; curl over the same pages as many times."""
        if self.cold is not None:
            return self.cold
        seconds, rss, curl = [], [], []
        for i in range(COLD_SAMPLES):
            m, tmp = self.new_mount("cold")
            self.cold_mount = (m, tmp)
            progress(f"cold: cat latest.csv on a fresh mount ({i + 1} of {COLD_SAMPLES}) ...")
            seconds.append(wall(["cat", self.latest(m)], stdout=subprocess.DEVNULL))
            rss.append(vm_hwm_mb(m.proc.pid))
            wait_for_file(self.cached(m))
            got = sha256_file(self.cached(m))
            if got != self.csv_sha:
                raise BenchError(f"cold: the cached result's sha256 is {got}, "
                                 f"expected {self.csv_sha}: wrong bytes")
            if i < COLD_SAMPLES - 1:
                self.cold_mount = None
                self._stop_mount("cold", m, tmp)
            progress("cold: curl over the same pages ...")
            curl.append(wall(["curl", "-s", "--fail", "-K", str(self.pages_cfg)]))
        self.cold = {"mount": m, "seconds": seconds, "rss_mb": max(rss), "curl_seconds": curl}
        return self.cold


def progress(text):
    print(text, file=sys.stderr, flush=True)


# ---- the figures ------------------------------------------------------------------

def fig_cold(b):
    c = b.cold_read()
    fs, curl = statistics.median(c["seconds"]), statistics.median(c["curl_seconds"])
    ratio = curl / fs
    b.row(f"cold: cat latest.csv, fresh mount ({b.csv_size / MB:.0f} MB, {len(b.pages)} pages)",
          f"{b.csv_size / MB / fs:.0f} MB/s ({fs:.2f} s)", ">= 0.9 x curl",
          f"{b.page_bytes / MB / curl:.0f} MB/s ({curl:.2f} s) curl -K, 1 conn",
          f"{ratio:.2f}", ratio >= 0.9)
    b.row(f"cold: the {COLD_SAMPLES} samples, execfs / curl (s)",
          "/".join(f"{t:.3f}" for t in c["seconds"]), "(median above)",
          "/".join(f"{t:.3f}" for t in c["curl_seconds"]))


def fig_warm(b):
    m = b.cold_read()["mount"]
    fs = min(wall(["cat", b.latest(m)], stdout=subprocess.DEVNULL) for _ in range(3))
    disk = min(wall(["cat", b.cached(m)], stdout=subprocess.DEVNULL) for _ in range(3))
    ratio = disk / fs
    b.row("warm: cat latest.csv again, best of 3",
          f"{b.csv_size / MB / fs:.0f} MB/s ({fs:.3f} s)", ">= 0.9 x cache file",
          f"{b.csv_size / MB / disk:.0f} MB/s ({disk:.3f} s) cat results/<eid>.csv",
          f"{ratio:.2f}", ratio >= 0.9)


def curl_ttfb(b, url):
    """The fake's time to first byte for url (median of 5), seconds."""
    times = []
    for _ in range(5):
        r = subprocess.run(["curl", "-s", "--fail", "-o", "/dev/null", "-w", "%{time_starttransfer}",
                            "-K", str(b.header_cfg), url],
                           check=True, capture_output=True, text=True)
        times.append(float(r.stdout))
    return statistics.median(times)


def fig_ttfb(b):
    times = []
    for i in range(3):
        with b.fresh_mount(f"ttfb{i}") as m:
            t0 = time.perf_counter()
            r = subprocess.run(["head", "-c", "100", b.latest_stream(m)], check=True,
                               capture_output=True)
            times.append(time.perf_counter() - t0)
            if r.stdout != b.csv_head:
                raise BenchError(f"ttfb: head -c 100 read {r.stdout!r}, expected {b.csv_head!r}")
    fs = statistics.median(times)
    page1 = curl_ttfb(b, b.pages[0])
    lookup = curl_ttfb(b, f"{b.fake.base_url}/query/{BIG}/results?limit=1&allow_partial_results=true")
    b.row("ttfb: head -c 100 stream/latest.csv, fresh mount (median of 3; 2 requests)",
          f"{fs * 1000:.1f} ms", "< 2 x fake", f"{page1 * 1000:.1f} ms fake TTFB, page 1",
          f"{fs / page1:.2f}", fs / page1 < 2)
    start = statistics.median(wall(["head", "-c", "100", str(b.workdir / "scenario.json")], stdout=subprocess.DEVNULL)
                              for _ in range(5))
    both = lookup + page1
    b.row("ttfb: the same, against the fake's 2 requests",
          f"{fs * 1000:.1f} ms", "< 2 x fake", f"{both * 1000:.1f} ms latest lookup + page 1",
          f"{fs / both:.2f}", fs / both < 2)
    b.row("ttfb reference: head -c 100 of a local file (process start-up)",
          f"{start * 1000:.1f} ms", "(no target)")


def fig_fanin(b):
    for rate in (0, FANIN_RATE_MB_S):
        b.fake.settings(rate_mb_s=rate)
        pace = f"fake at {rate:g} MB/s" if rate else "fake at memory speed"
        measured = {}
        try:
            for readers in (1, FANIN_READERS):
                with b.fresh_mount(f"fanin{readers}-{rate:g}") as m:
                    b.fake.reset()
                    progress(f"fanin: {readers} x cmp latest.csv, fresh mount, {pace} ...")
                    seconds = cmp_readers(b.latest(m), b.expected, readers)
                    measured[readers] = (seconds, b.csv_requests())
                    if readers == FANIN_READERS and not rate:
                        wait_for_file(b.cached(m))
                        progress(f"fanin: {readers} x cmp <cached file> (reference) ...")
                        floor = cmp_readers(b.cached(m), b.expected, readers)
        finally:
            b.fake.settings(rate_mb_s=0)
        (one, one_req), (many, many_req) = measured[1], measured[FANIN_READERS]
        ratio = many / one
        b.row(f"fanin: {FANIN_READERS} x cmp latest.csv, fresh mount, {pace}",
              f"{many:.2f} s, {many_req} CSV requests",
              f"<= 1.2 x 1 reader; {len(b.pages)} requests",
              f"{one:.2f} s 1 reader ({one_req} requests)", f"{ratio:.2f}",
              ratio <= 1.2 and many_req == len(b.pages) and one_req == len(b.pages))
        if not rate:
            b.row(f"fanin reference: {FANIN_READERS} x cmp <cached file> (the machine's floor)",
                  f"{floor:.2f} s", "(no target)", f"{many:.2f} s the same via execfs",
                  f"{many / floor:.2f}")


def polls_of_one_poller(seconds):
    """Status requests one poller makes in this many seconds: one at once,
    then after 0.5 s, doubling up to 3 s (README, Semantics)."""
    count, t, delay = 1, 0.0, 0.5
    while t + delay <= seconds:
        t += delay
        count += 1
        delay = min(delay * 2, 3.0)
    return count


def fig_parked(b):
    n = b.args.readers
    progress(f"parked: bench/parked_readers.py --readers {n} ...")
    tmp = b.workdir / "parked"  # it leaves its temporary directory behind: in ours
    tmp.mkdir()
    r = subprocess.run([sys.executable, str(BENCH / "parked_readers.py"), "--readers", str(n)],
                       capture_output=True, text=True, timeout=1800,
                       env=dict(os.environ, TMPDIR=str(tmp)))
    if r.returncode != 0:
        raise BenchError(f"parked_readers.py exited {r.returncode}: {r.stderr[-2000:]}")
    baseline = ""
    for line in r.stdout.splitlines()[1:]:
        name, value, target, *rest = re.split(r"\s{2,}", line.strip()) + ["", ""]
        ratio = rest[0].replace(" x baseline", "")
        ok = None
        if target == "baseline":
            baseline = f"{value} ms (no reader parked)"
            continue
        if target == "< 1000":
            ok = float(value) < 1000
        elif target == "<= 16":
            ok = int(value.split("/")[-1]) <= 16
        elif target == "near 0":
            target, ok = "near 0 (<= 10)", int(value) <= 10
        elif target == "independent of readers":
            seconds = float(re.search(r"in ([\d.]+) s", name)[1])
            most = polls_of_one_poller(seconds)
            target, ok = f"<= {most} (one poller)", int(value) <= most
        b.row(f"parked: {name}", value, target, baseline if ratio else "", ratio, ok)


def fig_memory(b):
    rss = b.cold_read()["rss_mb"]
    b.row(f"memory: daemon peak RSS (VmHWM) after the cold read of {b.csv_size / MB:.0f} MB",
          f"{rss:.1f} MB", "<= 64 MB", "", "", rss <= 64)


def listing_ms(b, path, repeat):
    """(median ms of `ls -l path`, requests the fake saw meanwhile, entries)."""
    before = len(b.fake.log())
    times = [wall(["ls", "-l", path], stdout=subprocess.DEVNULL) * 1000 for _ in range(repeat)]
    new = len(b.fake.log()) - before
    return statistics.median(times), new, len(os.listdir(path))


def wait_quiet(b, seconds=1.0, timeout=30):
    """Waits until the fake has seen no request for a while (set-up's polls)."""
    deadline = time.monotonic() + timeout
    count = len(b.fake.log())
    while time.monotonic() < deadline:
        time.sleep(seconds)
        now = len(b.fake.log())
        if now == count:
            return
        count = now


def fig_metadata(b):
    m = b.cold_read()["mount"]
    wait_quiet(b)
    ms, new, entries = listing_ms(b, m.p("queries", str(BIG)), 20)
    b.row(f"metadata: ls -l queries/{BIG} ({entries} entries), median of 20",
          f"{ms:.2f} ms, {new} requests", "< 50 ms, 0 requests", "", "", ms < 50 and new == 0)
    progress(f"metadata: 1000 runs of {SMALL} through the mount's execute file ...")
    t0 = time.perf_counter()
    for _ in range(1000):
        execute(m, SMALL)
    progress(f"  {time.perf_counter() - t0:.1f} s")
    wait_quiet(b)
    ms, new, entries = listing_ms(b, m.p("executions"), 10)
    b.row(f"metadata: ls -l executions ({entries} entries), median of 10",
          f"{ms:.2f} ms, {new} requests", "< 50 ms, 0 requests", "", "", ms < 50 and new == 0)


def fig_official(b):
    b.warm_json()
    out = b.workdir / "official.csv"
    env = dict(os.environ, DUNE_API_KEY=b.fake.key)
    progress("official: bench/official_client.py ...")
    off_s, off_mb = timed_max_rss(
        [sys.executable, str(BENCH / "official_client.py"), b.fake.base_url, b.eid, str(out),
         "--limit", str(PAGE_ROWS)], b.workdir, env=env)
    same = sha256_file(out) == b.csv_sha
    out.unlink()
    progress("official: cp latest.csv on a fresh mount ...")
    with b.fresh_mount("official") as m:
        out = b.workdir / "execfs.csv"
        fs_s, cp_mb = timed_max_rss(["cp", b.latest(m), str(out)], b.workdir)
        daemon_mb = vm_hwm_mb(m.proc.pid)
        if sha256_file(out) != b.csv_sha:
            raise BenchError("official: cp latest.csv copied wrong bytes")
        out.unlink()
    b.row("official: cp latest.csv, fresh mount: wall time",
          f"{fs_s:.2f} s", "execfs lower", f"{off_s:.2f} s official_client.py",
          f"{off_s / fs_s:.2f}", fs_s < off_s)
    b.row("official: peak memory (execfs: daemon VmHWM + cp max RSS)",
          f"{daemon_mb + cp_mb:.1f} MB ({daemon_mb:.1f} + {cp_mb:.1f})", "execfs lower",
          f"{off_mb:.1f} MB official_client.py (CSV {'identical' if same else 'differs'})",
          f"{off_mb / (daemon_mb + cp_mb):.2f}", daemon_mb + cp_mb < off_mb)


def random_lookup_names(count, rng):
    """count relative names, half queries/<qid> (random numeric ids, none of
    the fake's), half executions/<eid> (random ids the fake does not know),
    shuffled together."""
    alnum = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz"
    names = []
    for i in range(count):
        if i % 2:
            names.append("executions/zz" + "".join(rng.choice(alnum) for _ in range(24)))
        else:
            names.append(f"queries/{rng.randrange(10**6, 10**18)}")
    rng.shuffle(names)
    return names


def lookup_storm(m, names, threads):
    """stat (even) / lstat (odd) of every name from `threads` threads;
    ({(kind, outcome): count}, seconds), kind queries or executions,
    outcome ok or the errno's name."""
    counts, lock = {}, threading.Lock()

    def work(part):
        mine = {}
        for i, name in enumerate(part):
            kind = name.split("/", 1)[0]
            try:
                (os.stat if i % 2 == 0 else os.lstat)(m.p(name))
                outcome = "ok"
            except OSError as e:
                outcome = errno.errorcode.get(e.errno, str(e.errno))
            mine[(kind, outcome)] = mine.get((kind, outcome), 0) + 1
        with lock:
            for k, v in mine.items():
                counts[k] = counts.get(k, 0) + v

    parts = [names[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=work, args=(part,)) for part in parts]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return counts, time.perf_counter() - t0


def outcome_text(counts):
    return ", ".join(f"{kind} {outcome} {n}" for (kind, outcome), n in sorted(counts.items()))


def fig_rss_lookups(b):
    names = random_lookup_names(LOOKUPS, random.Random(0x5eed))
    with b.fresh_mount("rss_lookups") as m:
        wait_quiet(b, 0.5)
        b.fake.reset()  # the log holds at most 100,000 entries: count from zero
        before = vm_rss_mb(m.proc.pid)
        progress(f"rss_lookups: {LOOKUPS} lookups of random names, {LOOKUP_THREADS} threads ...")
        counts, seconds = lookup_storm(m, names, LOOKUP_THREADS)
        after = vm_rss_mb(m.proc.pid)
        requests = len(b.fake.log())
        hwm = vm_hwm_mb(m.proc.pid)
        b.fake.reset()
    b.row(f"rss_lookups: daemon VmRSS after {LOOKUPS} lookups of random names "
          f"(half queries/<qid>, half unknown executions/<eid>), fresh mount",
          f"{after:.1f} MB (VmHWM {hwm:.1f} MB)", "<= 64 MB", f"{before:.1f} MB before the lookups",
          "", after <= 64)
    b.row("rss_lookups: requests the fake saw during the lookups; their time; outcomes",
          f"{requests} requests (one per unknown execution: {LOOKUPS // 2}); "
          f"{seconds:.1f} s, {LOOKUPS / seconds:.0f} lookups/s; {outcome_text(counts)}",
          "(no target)")


def start_runs(m, qid, count):
    """Starts count runs of qid through the mount's execute file (as
    fig_metadata does); their ids."""
    t0, eids = time.perf_counter(), []
    for i in range(count):
        eids.append(execute(m, qid))
        if (i + 1) % 2000 == 0:
            progress(f"  {i + 1} runs, {time.perf_counter() - t0:.1f} s")
    progress(f"  {count} runs in {time.perf_counter() - t0:.1f} s")
    return eids


def fig_rss_index(b):
    root = pathlib.Path(tempfile.mkdtemp(prefix="execfs-bench-rss_index-"))
    try:
        cache = str(root / "cache")
        m = Mount(b.fake, root / "first", options=["max_age=3600"], cache_dir=cache)
        try:
            m.start()
            progress(f"rss_index: {INDEX_RUNS} runs of {SMALL} through the mount's execute file ...")
            eids = start_runs(m, SMALL, INDEX_RUNS)
            wait_quiet(b)
            first = vm_rss_mb(m.proc.pid)
        finally:
            b._stop_mount("rss_index first", m, root / "first")
        b.fake.reset()
        m = Mount(b.fake, root / "second", options=["max_age=3600"], cache_dir=cache)
        try:
            m.start()
            progress("rss_index: a fresh daemon on the same cache directory: ls -l executions, "
                     f"ls -l queries/{SMALL}, stat of every executions/<eid>/status ...")
            start = vm_rss_mb(m.proc.pid)
            ls_exec = wall(["ls", "-l", m.p("executions")], stdout=subprocess.DEVNULL)
            entries = len(os.listdir(m.p("executions")))
            ls_query = wall(["ls", "-l", m.p("queries", str(SMALL))], stdout=subprocess.DEVNULL)
            t0, missing = time.perf_counter(), 0
            for eid in eids:
                try:
                    os.stat(m.p("executions", eid, "status"))
                except FileNotFoundError:
                    missing += 1
            stats = time.perf_counter() - t0
            second = vm_rss_mb(m.proc.pid)
            requests = len(b.fake.log())
        finally:
            b._stop_mount("rss_index second", m, root / "second")
        b.fake.reset()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    b.row(f"rss_index: VmRSS of the daemon that started {INDEX_RUNS} runs of {SMALL}, "
          f"after them (no target)", f"{first:.1f} MB")
    b.row(f"rss_index: VmRSS of a fresh daemon on that cache after ls -l executions "
          f"({entries} entries), ls -l queries/{SMALL}, {INDEX_RUNS} stats of "
          f"executions/<eid>/status", f"{second:.1f} MB", "<= 64 MB",
          f"{start:.1f} MB at mount", "", second <= 64)
    b.row("rss_index: the fresh daemon's listings and stats; requests the fake saw meanwhile",
          f"ls -l executions {ls_exec * 1000:.0f} ms, ls -l queries/{SMALL} "
          f"{ls_query * 1000:.0f} ms, {INDEX_RUNS} stats {stats:.1f} s "
          f"({missing} ENOENT); {requests} requests", "(no target)")


FIGURES = [("cold", fig_cold), ("warm", fig_warm), ("ttfb", fig_ttfb), ("fanin", fig_fanin),
           ("parked", fig_parked), ("memory", fig_memory), ("metadata", fig_metadata),
           ("official", fig_official), ("rss_lookups", fig_rss_lookups),
           ("rss_index", fig_rss_index)]
NO_BIG_FIGURES = {"rss_lookups", "rss_index"}


def print_table(rows):
    head = ("figure", "value", "target", "baseline", "ratio", "")
    cells = [head] + [(f, v, t, bl, r, VERDICTS[ok])
                      for f, v, t, bl, r, ok in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    for c in cells:
        print("  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=500, help="size of the big result")
    ap.add_argument("--readers", type=int, default=1000, help="readers for parked_readers.py")
    ap.add_argument("--only", help="comma-separated figures: " + ",".join(n for n, _ in FIGURES))
    args = ap.parse_args()
    names = [n for n, _ in FIGURES]
    chosen = args.only.split(",") if args.only else names
    unknown = set(chosen) - set(names)
    if unknown:
        ap.error(f"unknown figures: {', '.join(sorted(unknown))}")

    # the figures that never read the big query skip its untimed walk (~50 s at 500 MB)
    args.walk_big = any(n not in NO_BIG_FIGURES for n in chosen)
    started = time.perf_counter()
    b = Bench(args)
    errors = 0
    try:
        b.start()
        for name, fn in FIGURES:
            if name not in chosen:
                continue
            try:
                fn(b)
            except Exception as e:  # one figure's failure does not hide the others
                traceback.print_exc()
                b.row(f"{name}: ERROR", str(e)[:200], ok="error")
                errors += 1
    finally:
        b.close()
    print_table(b.rows)
    print(f"\nexecfs: {os.environ.get('EXECFS_BIN', 'build/execfs')}; "
          f"wall time of the run: {time.perf_counter() - started:.0f} s")
    for name, text in b.daemon_logs:
        print(f"\nstderr of {name}:\n{text[-3000:]}", file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
