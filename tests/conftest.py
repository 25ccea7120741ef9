"""Shared fixtures: the fake APIs and real execfs mounts of them.

Every test mounts the real filesystem (the binary from EXECFS_BIN, else
build/execfs) against an in-process fake, uses it through ordinary tools, and
unmounts it even when the test fails. A daemon whose stderr shows a sanitizer
report fails the test that ran it.

Every test that uses the `fake` fixture runs once per backend (dune, redash);
@pytest.mark.backends("dune") limits a test to the backends named, for what
only one API has (pages, partial results, a job cache). The helpers below
(fake_csv, requests_for, run_elsewhere, ...) hide the APIs' differences.
"""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_dune import FakeDune  # noqa: E402
from fake_redash import FakeRedash  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXECFS = os.environ.get("EXECFS_BIN", os.path.join(ROOT, "build", "execfs"))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer")


BACKENDS = ("dune", "redash")

# A shell without job control starts its background commands with SIGINT
# ignored, and children inherit that: the `cat`s that tests interrupt would
# shrug off Ctrl-C. Taking the signal here gives them its default action.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _terminated(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# SIGTERM (`timeout`, a CI runner giving up) would end pytest without its
# teardowns, leaving FUSE mounts behind: as Ctrl-C, it runs them.
signal.signal(signal.SIGTERM, _terminated)

MOUNTED = []  # every Mount started and not yet stopped, for the session's end
TEST_MOUNTS = []  # every Mount the running test started, for its failure report


def new_key(kind="dune"):
    return f"{kind}-key-" + secrets.token_hex(12)


def kind_of(fake):
    return getattr(fake, "kind", "dune")


def source_of(fake):
    return f"{kind_of(fake)}:http://127.0.0.1:{fake.port}"


class Mount:
    """One execfs process and its mountpoint."""

    def __init__(self, fake, tmp, options=(), env=None, source=None, key=None,
                 cache_dir=None, name="mnt", args=()):
        self.fake = fake
        self.path = str(tmp / name)
        self.cache = cache_dir or str(tmp / "cache")
        self.stderr_path = str(tmp / f"{name}.stderr")
        self.options = list(options)
        self.key = key if key is not None else fake.key
        self.source = source or source_of(fake)
        self.env = env
        self.args = list(args)
        self.proc = None
        os.makedirs(self.path, exist_ok=True)

    def start(self, wait=True):
        env = dict(os.environ)
        for name in ("EXECFS_API_KEY", "DUNE_API_KEY", "REDASH_API_KEY"):
            env.pop(name, None)
        if self.env is None:
            env["EXECFS_API_KEY"] = self.key
        else:
            env.update(self.env)
        opts = [f"cache_dir={self.cache}"] + self.options
        argv = [EXECFS, self.source, self.path, "-f", "-o", ",".join(opts)] + self.args
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=self.stderr, env=env)
        MOUNTED.append(self)
        TEST_MOUNTS.append(self)
        if wait:
            self.wait_mounted()
        return self

    def wait_mounted(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.ismount(self.path):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"execfs exited with {self.proc.returncode}: {self.log()}")
            time.sleep(0.02)
        raise RuntimeError(f"execfs did not mount in {timeout}s: {self.log()}")

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def log(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def mounted(self):
        """Whether the mount is in the table, even when its daemon died
        (os.path.ismount says no for a dead FUSE mount)."""
        with open("/proc/mounts") as f:
            return any(line.split()[1] == self.path for line in f)

    def unmount(self):
        if self.mounted():
            r = subprocess.run(["fusermount3", "-u", self.path], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-uz", self.path], capture_output=True)

    def stop(self):
        if self.proc is None:
            return
        self.unmount()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.unmount()  # a daemon that died leaves its mount in the table
        self.proc = None
        if self in MOUNTED:
            MOUNTED.remove(self)
        self.stderr.close()
        text = self.log()
        for mark in SANITIZER_MARKS:
            assert mark not in text, f"sanitizer report in execfs stderr:\n{text}"


def pytest_sessionfinish(session, exitstatus):
    """Whatever a test left mounted (its teardown interrupted) goes now."""
    for m in list(MOUNTED):
        m.unmount()
        if m.proc is not None and m.proc.poll() is None:
            m.proc.kill()


# ---- a failing test's report: its daemons' logs and its fakes' requests ----
# When a test fails (in its setup, body or teardown), its report ends with the
# last lines of the log of each execfs it started (Mount keeps the daemon's
# stderr in <mount name>.stderr) and the last requests each of its fakes saw
# (fake.log()); both, whole, are copied to <basetemp>/failures/<test>/, which
# outlives the run (run-all.sh keeps it and prints its path). A passing test
# costs one list append per mount and one test of report.failed per phase.

LOG_TAIL_LINES = 60
REQUEST_TAIL = 40
_T0 = pytest.StashKey()  # when the test began, for the requests' times


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    TEST_MOUNTS.clear()
    item.stash[_T0] = time.time()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    try:
        _attach_logs(item, report)
    except Exception as e:  # never hide the failure itself behind one of ours
        report.sections.append(("execfs logs", f"could not gather the logs: {e!r}"))


def _failure_dir(item):
    factory = getattr(item.config, "_tmp_path_factory", None)
    base = str(factory.getbasetemp()) if factory is not None else tempfile.gettempdir()
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", item.nodeid).strip("_")[:150]
    path = os.path.join(base, "failures", name)
    os.makedirs(path, exist_ok=True)
    return path


def _request_line(entry, t0):
    target = entry.get("path", "?") + (f"?{entry['query']}" if entry.get("query") else "")
    line = f"{entry.get('time', t0) - t0:+8.3f}s {entry.get('method', '?')} {target}"
    line += f" -> {entry.get('status')}"
    if entry.get("fault"):
        line += f"  (fault: {entry['fault']})"
    if not entry.get("key_ok", True):
        line += "  (bad key)"
    if entry.get("body"):
        line += f"  body: {entry['body'][:200]}"
    return line


def _attach_logs(item, report):
    mounts = list(dict.fromkeys(TEST_MOUNTS))
    funcargs = getattr(item, "funcargs", None) or {}
    fakes = [v for v in funcargs.values() if isinstance(v, FakeDune)] + [m.fake for m in mounts]
    fakes = list({id(f): f for f in fakes if isinstance(f, FakeDune)}.values())
    if not mounts and not fakes:
        return
    where = _failure_dir(item)
    t0 = item.stash.get(_T0, 0.0)
    names = set()
    for m in mounts:
        name = os.path.basename(m.path) or "mnt"
        while name in names:
            name += "+"
        names.add(name)
        text = m.log()
        kept = os.path.join(where, f"{name}.log")
        with open(kept, "w") as f:
            f.write(text)
        lines = text.splitlines()
        tail = "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty)"
        report.sections.append(
            (f"execfs log of {name}: last {min(len(lines), LOG_TAIL_LINES)} of {len(lines)} "
             f"lines (whole: {kept})", tail))
    for n, fake in enumerate(fakes):
        entries = fake.log()
        name = f"{kind_of(fake)}-fake" + (f"-{n}" if len(fakes) > 1 else "")
        kept = os.path.join(where, f"{name}.requests")
        with open(kept, "w") as f:
            for e in entries:
                f.write(_request_line(e, t0) + "\n")
        tail = "\n".join(_request_line(e, t0) for e in entries[-REQUEST_TAIL:]) or "(no request)"
        report.sections.append(
            (f"{name} requests: last {min(len(entries), REQUEST_TAIL)} of {len(entries)}, "
             f"seconds from the test's start (all: {kept})", tail))


def pytest_configure(config):
    config.addinivalue_line("markers", "backends(*names): run only against these backends")


def pytest_generate_tests(metafunc):
    if "backend" not in metafunc.fixturenames:
        return  # a test file with a fake fixture of its own
    marker = metafunc.definition.get_closest_marker("backends")
    kinds = marker.args if marker else BACKENDS
    metafunc.parametrize("backend", kinds, scope="function")


@pytest.fixture
def fake(backend):
    cls = FakeRedash if backend == "redash" else FakeDune
    f = cls(key=new_key(backend), time_scale=0.2)
    f.start()
    yield f
    f.stop()


@pytest.fixture
def mounts(tmp_path, fake):
    """mounts(**kw) starts a mount of the fake; all are unmounted at the end."""
    started = []

    def make(wait=True, **kw):
        m = Mount(fake, tmp_path, **kw)
        started.append(m)
        return m.start(wait=wait)

    yield make
    for m in started:
        m.stop()


@pytest.fixture
def mnt(mounts):
    return mounts()


# ---- reading the fake directly, as the truth to compare with --------------

def auth_headers(fake, key=None):
    key = key or fake.key
    if kind_of(fake) == "redash":
        return {"Authorization": f"Key {key}"}
    return {"X-Dune-API-Key": key}


def api_get(fake, url, key=None):
    req = urllib.request.Request(url, headers=auth_headers(fake, key))
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read(), dict(resp.headers)


def fake_csv(fake, eid, path=None):
    """The API's CSV of a result (dune: its pages joined, header once)."""
    if kind_of(fake) == "redash":
        return fake.truth_csv(eid)
    url = f"{fake.base_url}/{path or f'execution/{eid}/results/csv'}?allow_partial_results=true"
    out = b""
    first = True
    while url:
        body, headers = api_get(fake, url)
        if not first:
            body = body.split(b"\n", 1)[1] if b"\n" in body else b""
        out += body
        first = False
        url = {k.lower(): v for k, v in headers.items()}.get("x-dune-next-uri")
    return out


def fake_latest_csv(fake, qid):
    """The CSV of the query's latest result, as the API serves it now."""
    if kind_of(fake) == "redash":
        return fake.truth_csv(f"result-{fake.latest_result_id(qid)}")
    return fake_csv(fake, None, path=f"query/{qid}/results/csv")


def fake_json_rows(fake, eid):
    if kind_of(fake) == "redash":
        return json.loads(fake.truth_json(eid))["query_result"]["data"]["rows"]
    url = f"{fake.base_url}/execution/{eid}/results?allow_partial_results=true"
    rows = []
    while url:
        body, _ = api_get(fake, url)
        doc = json.loads(body)
        rows += doc["result"]["rows"]
        url = doc.get("next_uri")
    return rows


def json_rows(fake, doc):
    """The rows of a results.json / latest.json document."""
    if kind_of(fake) == "redash":
        return doc["query_result"]["data"]["rows"]
    return doc["result"]["rows"]


def requests_to(fake, fragment, method=None):
    return [e for e in fake.log() if fragment in e["path"] and (method is None or e["method"] == method)]


def requests_for(fake, what, ident=None, fmt="csv"):
    """The requests the fake saw for one kind of call:
    execute (ident: qid), status / cancel / results (ident: eid), latest
    (ident: qid, the cheap check of which result is latest)."""
    redash = kind_of(fake) == "redash"
    if what == "execute":
        method, paths = "POST", ([f"/api/queries/{ident}/results", f"/api/queries/{ident}/refresh"]
                                 if redash else [f"/api/v1/query/{ident}/execute"])
    elif what == "status":
        method, paths = "GET", [f"/api/jobs/{ident}"] if redash else [f"/api/v1/execution/{ident}/status"]
    elif what == "cancel":
        method, paths = ("DELETE", [f"/api/jobs/{ident}"]) if redash else \
            ("POST", [f"/api/v1/execution/{ident}/cancel"])
    elif what == "latest":
        method, paths = "GET", [f"/api/queries/{ident}"] if redash else [f"/api/v1/query/{ident}/results"]
    elif what == "results":
        method = "GET"
        if redash:
            rid = ident[len("result-"):] if ident.startswith("result-") else str(fake.result_id(ident))
            paths = [f"/api/query_results/{rid}.{fmt}"]
            paths += [f"/api/queries/{q}/results/{rid}.{fmt}" for q in fake.query_ids()]
        else:
            paths = [f"/api/v1/execution/{ident}/results" + ("/csv" if fmt == "csv" else "")]
    else:
        raise ValueError(what)
    return [e for e in fake.log() if e["method"] == method and e["path"] in paths]


def fault_at(fake, what, ident=None):
    """The match (and method) of a fault aimed at one kind of call:
    execute, latest (ident: qid), status, cancel, csv, json."""
    redash = kind_of(fake) == "redash"
    table = {
        "execute": ({"match": "/results", "method": "POST"} if redash else {"match": "/execute"}),
        "latest": ({"match": f"/api/queries/{ident}", "method": "GET"} if redash
                   else {"match": f"/query/{ident}/results"}),
        "status": {"match": "/api/jobs/" if redash else "/status", "method": "GET"},
        "cancel": ({"match": "/api/jobs/", "method": "DELETE"} if redash else {"match": "/cancel"}),
        "csv": {"match": ".csv" if redash else "/results/csv"},
        "json": {"match": ".json" if redash else "/results?"},
    }
    return table[what]


def message(fake, **by_backend):
    """The text one backend's API uses for something: message(fake, dune=..., redash=...)."""
    return by_backend[kind_of(fake)]


def run_elsewhere(fake, qid):
    """Starts a run straight at the API, as another client would; its id."""
    if kind_of(fake) == "redash":
        url, body = f"{fake.base_url}/api/queries/{qid}/results", {"parameters": {}, "max_age": 0}
        defs = json.loads(api_get(fake, f"{fake.base_url}/api/queries/{qid}")[0])
        for d in defs.get("options", {}).get("parameters", []):
            body["parameters"][d["name"]] = d.get("value")
    else:
        url, body = f"{fake.base_url}/query/{qid}/execute", {}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={**auth_headers(fake), "Content-Type": "application/json"})
    doc = json.load(urllib.request.urlopen(req, timeout=30))
    return doc["job"]["id"] if kind_of(fake) == "redash" else doc["execution_id"]


def execute(m, qid, text=""):
    """Starts a run through the mount, as a shell would; returns its id."""
    with open(m.p("queries", str(qid), "execute"), "r+") as f:
        f.write(text or "\n")  # an empty write() is no write at all
        f.flush()
        f.seek(0)
        eid = f.read().strip()
    assert eid
    return eid


def wait_for(cond, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def need(tool):
    """Skips a test whose tool is missing, saying how to get it."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (tests/install-deps.sh installs it)")


def wait_ended(m, eid):
    """Waits for a run to end, through its status file: its result is not read."""
    wait_for(lambda: open(m.p("executions", eid, "status")).read().strip()
             not in ("pending", "running"), timeout=30)


def stall_download(fake, seconds):
    """Holds the next CSV download in the middle for `seconds`: dune's page 3
    of 5 comes late; redash sends headers and half the body, then silence."""
    if kind_of(fake) == "dune":
        fake.add_fault(match="offset=2000", action="delay", seconds=seconds)
    else:
        fake.add_fault(**fault_at(fake, "csv"), action="stall_body", seconds=seconds)
