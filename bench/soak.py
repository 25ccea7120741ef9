#!/usr/bin/env python3
"""Soak: one execfs mount under a mixed workload, with faults switched on in
the fake, for a while; the daemon's memory and descriptors sampled as it goes.

    /usr/bin/python3 bench/soak.py [--minutes 15] [--sample-seconds 30]
                                   [--backend dune|redash]

Starts tests/fake_dune.py (or tests/fake_redash.py) in a process of its own,
with the queries of QUERIES (at the fake's real pace, --time-scale 1; dune
pages of 1000 rows), and one mount of it (conftest.Mount, EXECFS_BIN selects
the binary) with max_age=10 (latest.* revalidated often) and cache_size=20M
(results evicted and downloaded again as the cache fills). Then, until the
time is up, in threads of their own:

  runs      a run of 5001, 5002 or 5003 started through its execute file every
            0.3 to 1.2 s (never 5004: its latest result stays the prior run's);
  reads     READERS threads, each in a loop: `cat` of a run's results.csv
            (or stream/results.csv, or results.json), a recent run more often
            than an old one, or of a query's latest.csv; each read's output
            is checked against the fake's own bytes, fetched over its HTTP API
            (dune: the CSV pages joined, header once, and the JSON rows;
            redash: the result's .csv and .json documents, byte for byte).
            latest.csv must be the result of one of the query's runs.
            A read that fails (exit status, or READ_TIMEOUT) is a read error,
            not wrong bytes: some faults are meant to fail reads. A wrong read
            is kept in /tmp/execfs-soak-wrong-*, with the API's CSV of the run
            its rows name, and its row says where the two first differ;
  lookups   ~10 stats a second of random names, queries/<random qid> and
            executions/<random unknown id> (each of those costs a request);
            `ls -l executions` every 5 s;
  faults    every second, while fewer than 3 are pending, one more fault in
            the fake, aimed at one kind of request (status, CSV, JSON, latest,
            execute): 429 (Retry-After 1), 503, 500, a dropped connection
            (before or after acting; never after acting on an execute: that
            would start a run nobody knows), a cut body, a delay or a stalled
            body of 1 to 3 s, an HTML page.

Every --sample-seconds a row: elapsed s, the daemon's VmRSS (MB = 10^6 bytes),
of it RssAnon (the heap and stacks: what a leak grows; the rest is mapped
libraries, which grow as more of their code runs), the objects the daemon
holds (statvfs's f_files), its open descriptors and threads, runs started,
reads done, read errors, wrong reads, lookups. At the end: first, last and
highest VmRSS and RssAnon and their growth (last minus the first sample taken
after WARMUP seconds; with no such sample, minus the first sample), what kinds
of read errors came, the faults the fake served.

Exit status: 1 if a read returned wrong bytes, the daemon died or its stderr
shows a sanitizer report; 130 on Ctrl-C or SIGTERM; 2 if the set-up failed;
else 0. The mount is unmounted and the fake stopped in every case.
"""
import argparse
import csv
import hashlib
import http.client
import io
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

BENCH = pathlib.Path(__file__).resolve().parent
TESTS = BENCH.parent / "tests"
sys.path.insert(0, str(TESTS))
from conftest import Mount, execute  # noqa: E402  (also: SIGTERM -> KeyboardInterrupt)
from localfake import LocalFake, proc_status  # noqa: E402

MB = 1e6
WARMUP = 60
READERS = 3
READ_TIMEOUT = 180
PAGE_ROWS = 1000
COLUMNS = [
    {"name": "n", "type": "integer"},
    {"name": "name", "type": "varchar"},
    {"name": "value", "type": "double"},
    {"name": "day", "type": "varchar"},
    {"name": "note", "type": "varchar"},
]
EXECUTED = (5001, 5002, 5003)
LATEST_ONLY = 5004
QUERIES = [
    {"id": 5001, "name": "small", "columns": COLUMNS, "generate_rows": 20,
     "pending_seconds": 0.2, "run_seconds": 0.5, "prior_runs": 1},
    {"id": 5002, "name": "pages", "columns": COLUMNS, "generate_rows": 3500,
     "pending_seconds": 0.2, "run_seconds": 1.0, "prior_runs": 1},
    {"id": 5003, "name": "slow", "columns": COLUMNS, "generate_rows": 50,
     "pending_seconds": 1.0, "run_seconds": 3.0, "prior_runs": 1},
    {"id": LATEST_ONLY, "name": "latest only", "columns": COLUMNS, "generate_rows": 200,
     "pending_seconds": 0.2, "run_seconds": 0.5, "prior_runs": 2},
]
# where a fault is aimed: (substring of path+query, method)
TARGETS = {
    "dune": {"status": ("/status", "GET"), "csv": ("/results/csv", "GET"),
             "json": ("/results?", "GET"), "latest": ("/query/", "GET"),
             "execute": ("/execute", "POST")},
    "redash": {"status": ("/api/jobs/", "GET"), "csv": (".csv", "GET"),
               "json": (".json", "GET"), "latest": ("/api/queries/", "GET"),
               "execute": ("/results", "POST")},
}
ALL = ("status", "csv", "json", "latest", "execute")
READS = ("status", "csv", "json", "latest")
FAULTS = [  # (name, fields, kinds of request it may hit)
    ("429", {"action": "status", "code": 429, "retry_after": 1}, ALL),
    ("503", {"action": "status", "code": 503}, ALL),
    ("500", {"action": "status", "code": 500}, ("status", "csv", "json", "latest")),
    ("drop", {"action": "drop"}, ALL),
    ("drop_after_request", {"action": "drop_after_request"}, READS),
    ("cut_body", {"action": "cut_body"}, ("status", "csv", "json")),
    ("cut_body_rst", {"action": "cut_body", "reset": True}, ("csv", "json")),
    ("delay", {"action": "delay"}, ALL),
    ("stall_body", {"action": "stall_body"}, ("csv", "json")),
    ("html", {"action": "html"}, READS),
]


def progress(text):
    print(text, file=sys.stderr, flush=True)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def rows_digest(rows):
    return sha(json.dumps(rows, sort_keys=True).encode())


class SetupError(Exception):
    pass


# ---- the fake, in a process of its own ----------------------------------------

class FakeProcess(LocalFake):
    """tests/fake_<backend>.py as a separate process (localfake.py), and API
    GETs that ride out the faults meant for execfs."""

    def __init__(self, workdir, backend):
        argv = ["--time-scale", "1"] + (["--max-page-rows", str(PAGE_ROWS)] if backend == "dune" else [])
        try:
            super().__init__(workdir, backend, QUERIES, *argv)
        except RuntimeError as e:
            raise SetupError(str(e)) from None

    # -- the API, as the truth to compare with

    def _get_once(self, url, want):
        header = ({"X-Dune-API-Key": self.key} if self.kind == "dune"
                  else {"Authorization": f"Key {self.key}"})
        req = urllib.request.Request(url, headers=header)
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
            headers = {k.lower(): v for k, v in resp.headers.items()}
        ctype = headers.get("content-type", "")
        if want not in ctype:  # an HTML fault answers 200 with a page
            raise ValueError(f"{url}: content type {ctype}, wanted {want}")
        if want == "json":
            json.loads(body)
        return body, headers

    def get(self, url, want, tries=30):
        """(body, headers) of an API GET; a fault in the way (an error status,
        a dropped or cut connection, an HTML page) is retried."""
        for attempt in range(tries):
            try:
                return self._get_once(url, want)
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
                if attempt == tries - 1:
                    raise RuntimeError(f"the fake's truth for {url}: {e}") from e
                time.sleep(0.3)

    def truth(self, eid, fmt):
        """The digest a read of executions/<eid>/results.<fmt> must give:
        CSV bytes; for dune's merged JSON document, its rows (a JSON text
        of them, sorted keys); for redash's JSON, the document's bytes."""
        if fmt == "csv":
            return sha(self.csv_bytes(eid))
        if self.kind == "dune":
            rows, url = [], f"{self.base_url}/execution/{eid}/results?allow_partial_results=true"
            while url:
                doc = json.loads(self.get(url, "json")[0])
                rows += doc["result"]["rows"]
                url = doc.get("next_uri")
            return rows_digest(rows)
        return sha(self.get(f"{self.root}/api/query_results/{self.result_id(eid)}.json",
                            "json")[0])

    def csv_bytes(self, eid):
        """The CSV of a run, as the API serves it (dune: pages joined)."""
        if self.kind == "dune":
            return self._dune_csv(f"{self.base_url}/execution/{eid}/results/csv")
        return self.get(f"{self.root}/api/query_results/{self.result_id(eid)}.csv", "csv")[0]

    def result_id(self, eid):
        """redash: the result id of a finished job, or of result-<rid>."""
        if eid.startswith("result-"):
            return eid[len("result-"):]
        job = json.loads(self.get(f"{self.root}/api/jobs/{eid}", "json")[0])["job"]
        rid = job.get("query_result_id") or job.get("result")
        if not rid:
            raise RuntimeError(f"the fake's job {eid} has no result: {job}")
        return rid

    def finished(self, eid):
        """Whether the run has ended with a result, as the API says now."""
        if self.kind == "dune":
            doc = json.loads(self.get(f"{self.base_url}/execution/{eid}/status", "json")[0])
            return doc.get("state") in ("QUERY_STATE_COMPLETED", "QUERY_STATE_COMPLETED_PARTIAL")
        if eid.startswith("result-"):
            return True
        job = json.loads(self.get(f"{self.root}/api/jobs/{eid}", "json")[0])["job"]
        return bool(job.get("query_result_id") or job.get("result"))

    def latest_truth(self, qid):
        """The digest of the query's latest result's CSV, as the API has it now."""
        if self.kind == "dune":
            return sha(self._dune_csv(f"{self.base_url}/query/{qid}/results/csv"))
        doc = json.loads(self.get(f"{self.root}/api/queries/{qid}", "json")[0])
        rid = doc["latest_query_data_id"]
        return sha(self.get(f"{self.root}/api/query_results/{rid}.csv", "csv")[0])

    def _dune_csv(self, url):
        url += "?allow_partial_results=true"
        out, first = b"", True
        while url:
            body, headers = self.get(url, "csv")
            if not first:
                body = body.split(b"\n", 1)[1] if b"\n" in body else b""
            out += body
            first = False
            url = headers.get("x-dune-next-uri")
        return out


# ---- the soak -------------------------------------------------------------------

class Soak:
    def __init__(self, args):
        self.args = args
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="execfs-soak-"))
        self.fake = None
        self.mount = None
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.children = set()            # cat and ls processes running now
        self.threads = []
        self.runs = []                   # (qid, eid), oldest first
        self.runs_by_qid = {q: [] for q in EXECUTED}
        self.truths = {}                 # (eid, fmt) -> digest
        self.latest_ok = {q: set() for q in EXECUTED + (LATEST_ONLY,)}  # acceptable digests
        self.count = dict(runs=0, execute_errors=0, reads=0, read_errors=0, wrong=0,
                          unverified=0, lookups=0, lookup_errors=0, listings=0, faults=0)
        self.read_errors = {}            # kind of error -> count
        self.lookup_errors = {}
        self.faults_added = {}
        self.wrong = []                  # descriptions of wrong reads
        self.samples = []                # (elapsed, rss MB, fds, threads)
        self.failures = []               # what else makes the exit status 1

    def bump(self, name, by=1, table=None, key=None):
        with self.lock:
            self.count[name] += by
            if table is not None:
                table[key] = table.get(key, 0) + 1

    # -- set-up and tear-down

    def start(self):
        b = self.args.backend
        self.fake = FakeProcess(self.workdir, b)
        progress(f"fake_{b}.py on port {self.fake.port}; the prior results' truth ...")
        for qid in self.latest_ok:
            self.latest_ok[qid].add(self.fake.latest_truth(qid))
        self.mount = Mount(self.fake, self.workdir, options=["max_age=10", "cache_size=20M"])
        self.mount.start()
        progress(f"mounted at {self.mount.path} (pid {self.mount.proc.pid}), "
                 f"execfs {os.environ.get('EXECFS_BIN', 'build/execfs')}")

    def close(self):
        self.stop.set()
        with self.lock:
            children = list(self.children)
        for p in children:
            if p.poll() is None:
                p.kill()
        deadline = time.monotonic() + 30  # an execute may be riding out a 429
        for t in self.threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        try:
            if self.mount is not None:
                try:
                    self.mount.stop()
                except AssertionError as e:  # a sanitizer report in its stderr
                    self.failures.append(str(e)[:2000])
        finally:
            if self.fake is not None:
                self.fake.stop()
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the workers

    def spawn(self, name, fn, *a):
        def body():
            try:
                fn(*a)
            except Exception:
                if not self.stop.is_set():
                    traceback.print_exc()
                    self.failures.append(f"the {name} thread died")
        t = threading.Thread(target=body, name=name, daemon=True)
        self.threads.append(t)
        t.start()

    def run_child(self, argv, timeout):
        """(exit status or None on a timeout, stdout, stderr) of a command
        whose process can be killed by close()."""
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self.lock:
            self.children.add(p)
        try:
            out, err = p.communicate(timeout=timeout)
            return p.returncode, out, err
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            return None, out, err
        finally:
            with self.lock:
                self.children.discard(p)

    def starter(self, rng):
        while not self.stop.wait(rng.uniform(0.3, 1.2)):
            qid = rng.choice(EXECUTED)
            try:
                eid = execute(self.mount, qid)
            except OSError:
                self.bump("execute_errors")
                continue
            with self.lock:
                self.runs.append((qid, eid))
                self.runs_by_qid[qid].append(eid)
                self.count["runs"] += 1

    def reader(self, rng):
        while not self.stop.is_set():
            with self.lock:
                runs = list(self.runs[-10:]) if rng.random() < 0.7 else list(self.runs)
            if not runs or rng.random() < 0.25:
                qid = rng.choice(EXECUTED + (LATEST_ONLY,))
                self.read(("latest", qid), self.mount.p("queries", str(qid), "latest.csv"))
                continue
            qid, eid = rng.choice(runs)
            name = rng.choices(["results.csv", "stream/results.csv", "results.json"],
                               weights=[5, 2, 3])[0]
            self.read(("result", eid, "json" if name.endswith("json") else "csv", qid),
                      self.mount.p("executions", eid, name))

    def read(self, what, path):
        rc, out, err = self.run_child(["cat", path], READ_TIMEOUT)
        if self.stop.is_set():
            return  # killed by close(), or raced with it: not counted
        if rc != 0:
            kind = "timeout" if rc is None else (err.decode(errors="replace").strip()
                                                 .rsplit(": ", 1)[-1] or f"exit {rc}")
            self.bump("reads")
            self.bump("read_errors", table=self.read_errors, key=kind)
            return
        try:
            verdict = self.verify(what, out)
        except Exception as e:  # the truth could not be had: say so, count it apart
            progress(f"soak: cannot check {path}: {e}")
            self.bump("reads")
            self.bump("unverified")
            return
        self.bump("reads")
        if not verdict:
            rel = os.path.relpath(path, self.mount.path)
            text = f"{rel}: {len(out)} bytes, sha256 {sha(out)[:16]}, not the API's"
            try:
                text += "; " + self.diagnose(what, out)
            except Exception as e:
                text += f"; (no diagnosis: {e})"
            progress(f"soak: WRONG BYTES: {text}")
            with self.lock:
                self.count["wrong"] += 1
                self.wrong.append(text)

    def names_run(self, eid, tag):
        if self.args.backend == "dune":
            return eid.endswith(tag)
        try:
            return str(self.fake.result_id(eid)) == tag
        except Exception:  # not finished
            return False

    def diagnose(self, what, out):
        """What a wrong read holds: its rows and the runs they name (the fake
        tags each row's "name" with its run: dune the execution id's last 4
        characters, redash the result id), against the CSV of the run named
        (or the read's own run): sizes and the first byte that differs. The
        read's bytes and that CSV are kept in a directory that outlives the
        soak."""
        keep = pathlib.Path(tempfile.mkdtemp(prefix="execfs-soak-wrong-"))
        (keep / "read").write_bytes(out)
        text = out.decode("utf-8", "replace")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        tags = {}
        if rows and "name" in rows[0]:
            at = rows[0].index("name")
            for row in rows[1:]:
                if len(row) > at and "_r" in row[at]:
                    tag = row[at].rsplit("_r", 1)[1]
                    tags[tag] = tags.get(tag, 0) + 1
        note = f"{max(0, len(rows) - 1)} rows, runs named {tags or 'none'}"
        if what[0] == "result" and what[2] == "csv":
            eid = what[1]
        else:
            with self.lock:
                eids = list(self.runs_by_qid.get(what[1] if what[0] == "latest" else what[3], []))
            top = max(tags, key=tags.get) if tags else None
            named = [e for e in eids if top and self.names_run(e, top)]
            if not named:
                return note + f"; kept in {keep}"
            eid = named[-1]
        truth = self.fake.csv_bytes(eid)
        (keep / f"api-{eid}.csv").write_bytes(truth)
        first = next((i for i, (a, b) in enumerate(zip(out, truth)) if a != b),
                     min(len(out), len(truth)))
        return (note + f"; the API's CSV of {eid}: {len(truth)} bytes, "
                f"{'identical' if truth == out else f'first difference at byte {first}'}; "
                f"kept in {keep}")

    def verify(self, what, out):
        if what[0] == "latest":
            qid = what[1]
            got = sha(out)
            with self.lock:
                if got in self.latest_ok[qid]:
                    return True
                eids = list(self.runs_by_qid.get(qid, []))
            # a newer run's result: the query's runs, newest first, then the API's latest
            for eid in reversed(eids):
                if (eid, "csv") not in self.truths and not self.fake.finished(eid):
                    continue
                digest = self.truth(eid, "csv")
                with self.lock:
                    self.latest_ok[qid].add(digest)
                if digest == got:
                    return True
            digest = self.fake.latest_truth(qid)
            with self.lock:
                self.latest_ok[qid].add(digest)
            return digest == got
        _, eid, fmt, qid = what
        expected = self.truth(eid, fmt)
        if fmt == "json" and self.args.backend == "dune":
            try:
                got = rows_digest(json.loads(out)["result"]["rows"])
            except (ValueError, KeyError, TypeError):
                return False
        else:
            got = sha(out)
        if fmt == "csv":
            with self.lock:
                self.latest_ok[qid].add(expected)
        return got == expected

    def truth(self, eid, fmt):
        with self.lock:
            digest = self.truths.get((eid, fmt))
        if digest is None:
            digest = self.fake.truth(eid, fmt)
            with self.lock:
                self.truths[(eid, fmt)] = digest
        return digest

    def looker(self, rng):
        alnum = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz"
        next_ls = time.monotonic() + 5
        while not self.stop.wait(0.1):
            if rng.random() < 0.5:
                path = self.mount.p("queries", str(rng.randrange(10**6, 10**18)))
            else:
                path = self.mount.p("executions", "zz" + "".join(rng.choice(alnum)
                                                                  for _ in range(24)))
            try:
                os.stat(path)
                self.bump("lookups")
            except FileNotFoundError:
                self.bump("lookups")
            except OSError as e:
                self.bump("lookups")
                self.bump("lookup_errors", table=self.lookup_errors, key=e.strerror)
            if time.monotonic() >= next_ls:
                next_ls += 5
                rc, _, err = self.run_child(["ls", "-l", self.mount.p("executions")], 60)
                if rc == 0:
                    self.bump("listings")
                elif not self.stop.is_set():
                    self.bump("lookup_errors", table=self.lookup_errors,
                              key=f"ls: {err.decode(errors='replace').strip()[-80:]}")

    def injector(self, rng):
        targets = TARGETS[self.args.backend]
        while not self.stop.wait(1.0):
            if len(self.fake.control("GET", "faults")) >= 3:
                continue
            name, fields, kinds = rng.choice(FAULTS)
            kind = rng.choice(kinds)
            match, method = targets[kind]
            fault = dict(fields, match=match, method=method, count=1)
            if fields["action"] in ("delay", "stall_body"):
                fault["seconds"] = round(rng.uniform(1, 3), 1)
            self.fake.control("POST", "faults", fault)
            self.bump("faults", table=self.faults_added, key=f"{name}@{kind}")

    # -- sampling

    def sample(self, t0):
        pid = self.mount.proc.pid
        if self.mount.proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {self.mount.proc.returncode}")
        rss = proc_status(pid, "VmRSS") * 1024 / MB
        anon = proc_status(pid, "RssAnon") * 1024 / MB
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        threads = proc_status(pid, "Threads")
        try:
            objects = os.statvfs(self.mount.path).f_files
        except OSError:
            objects = -1
        elapsed = time.monotonic() - t0
        self.samples.append((elapsed, rss, fds, threads, anon))
        with self.lock:
            c = dict(self.count)
        print(f"{elapsed:8.0f} {rss:8.1f} {anon:8.1f} {objects:7d} {fds:5d} {threads:7d} "
              f"{c['runs']:6d} {c['reads']:6d} {c['read_errors']:6d} {c['wrong']:5d} "
              f"{c['lookups']:7d}", flush=True)

    def run(self):
        duration = self.args.minutes * 60
        t0 = time.monotonic()
        print(f"{'elapsed':>8} {'rss_MB':>8} {'anon_MB':>8} {'objects':>7} {'fds':>5} "
              f"{'threads':>7} {'runs':>6} {'reads':>6} {'errors':>6} {'wrong':>5} {'lookups':>7}",
              flush=True)
        self.sample(t0)
        seed = self.args.seed
        self.spawn("faults", self.injector, random.Random(seed))
        self.spawn("runs", self.starter, random.Random(seed + 1))
        for i in range(READERS):
            self.spawn(f"reader{i}", self.reader, random.Random(seed + 2 + i))
        self.spawn("lookups", self.looker, random.Random(seed + 100))
        end = t0 + duration
        next_sample = t0 + self.args.sample_seconds
        while True:
            now = time.monotonic()
            if now >= end:
                break
            time.sleep(max(0.0, min(next_sample, end) - now))
            if time.monotonic() >= next_sample and time.monotonic() < end:
                self.sample(t0)
                next_sample += self.args.sample_seconds
        self.sample(t0)  # the last one, at the end of the time
        self.stop.set()

    def report(self, interrupted=False):
        print()
        if self.samples:
            rss = [s[1] for s in self.samples]
            after = [s for s in self.samples if s[0] >= WARMUP]
            base = after[0] if after else self.samples[0]
            how = (f"the first sample after {WARMUP} s of warm-up (at {base[0]:.0f} s)" if after
                   else f"the first sample (none after {WARMUP} s of warm-up)")
            print(f"VmRSS: first {rss[0]:.1f} MB, last {rss[-1]:.1f} MB, max {max(rss):.1f} MB; "
                  f"growth {rss[-1] - base[1]:+.1f} MB (last minus {how})")
            anon = [s[4] for s in self.samples]
            print(f"RssAnon: first {anon[0]:.1f} MB, last {anon[-1]:.1f} MB, max {max(anon):.1f} MB; "
                  f"growth {anon[-1] - base[4]:+.1f} MB")
            print(f"open fds: first {self.samples[0][2]}, last {self.samples[-1][2]}, "
                  f"max {max(s[2] for s in self.samples)}; threads: last {self.samples[-1][3]}, "
                  f"max {max(s[3] for s in self.samples)}")
        c = self.count
        print(f"runs started {c['runs']} (execute errors {c['execute_errors']}); reads {c['reads']}: "
              f"errors {c['read_errors']}, wrong {c['wrong']}, not checked {c['unverified']}; "
              f"lookups {c['lookups']} (errors other than ENOENT {c['lookup_errors']}); "
              f"ls -l executions {c['listings']}")
        if self.read_errors:
            print("read errors: " + ", ".join(f"{k} {v}" for k, v in sorted(self.read_errors.items())))
        if self.lookup_errors:
            print("lookup errors: " + ", ".join(f"{k} {v}" for k, v in
                                                sorted(self.lookup_errors.items())))
        if self.faults_added:
            print(f"faults added ({c['faults']}): " +
                  ", ".join(f"{k} {v}" for k, v in sorted(self.faults_added.items())))
        for w in self.wrong[:20]:
            print(f"WRONG: {w}")
        for f in self.failures:
            print(f"FAILURE: {f}")
        if interrupted:
            print("interrupted")

    def fake_summary(self):
        """Requests the fake served, and how many a fault met (its log keeps
        the last 100,000)."""
        try:
            log = self.fake.control("GET", "log")
        except Exception as e:
            return f"(the fake's log could not be read: {e})"
        faulted = {}
        for e in log:
            if "fault" in e:
                faulted[e["fault"]] = faulted.get(e["fault"], 0) + 1
        return (f"the fake served {len(log)} API requests"
                f"{' (its log is full: the last 100000)' if len(log) >= 100_000 else ''}, "
                f"{sum(faulted.values())} of them met a fault: " +
                ", ".join(f"{k} {v}" for k, v in sorted(faulted.items())))

    def daemon_log_summary(self):
        lines = [line for line in self.mount.log().splitlines()
                 if line.strip() and not line.startswith("execfs: info: ")]
        if not lines:
            return "daemon stderr: nothing but info lines"
        return (f"daemon stderr: {len(lines)} lines other than info, the last ones:\n  " +
                "\n  ".join(line[:300] for line in lines[-8:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15, help="how long the workload runs")
    ap.add_argument("--sample-seconds", type=float, default=30, help="time between samples")
    ap.add_argument("--backend", choices=("dune", "redash"), default="dune")
    ap.add_argument("--seed", type=int, default=1, help="of the workload's random choices")
    args = ap.parse_args()
    if args.minutes < 0 or args.sample_seconds <= 0:
        ap.error("--minutes must be >= 0 and --sample-seconds > 0")

    started = time.monotonic()
    s = Soak(args)
    status, interrupted = 0, False
    try:
        try:
            s.start()
        except (SetupError, RuntimeError, OSError) as e:
            progress(f"soak: set-up failed: {e}")
            return 2
        try:
            s.run()
        except RuntimeError as e:  # the daemon died
            s.failures.append(str(e))
        summary = s.fake_summary()
        daemon = s.daemon_log_summary()
    except KeyboardInterrupt:
        interrupted, summary, daemon = True, "", ""
    finally:
        try:
            s.close()
        except KeyboardInterrupt:
            interrupted = True
    s.report(interrupted)
    if summary:
        print(summary)
    if daemon:
        print(daemon)
    print(f"backend {args.backend}; wall time {time.monotonic() - started:.0f} s")
    if s.wrong or s.failures:
        status = 1
    elif interrupted:
        status = 130
    return status


if __name__ == "__main__":
    sys.exit(main())
