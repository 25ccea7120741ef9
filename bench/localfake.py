"""A fake API of tests/ (fake_dune.py, fake_redash.py) in a process of its own,
for the benchmarks: in-process, its GIL would skew what they measure. It has
what conftest.Mount needs of a fake (kind, key, port), and its control
interface (/_fake/...: never faulted, never in the request log)."""
import json
import pathlib
import subprocess
import sys
import time
import urllib.request

TESTS = pathlib.Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))
from conftest import new_key  # noqa: E402


class LocalFake:
    def __init__(self, workdir, kind, queries, *argv):
        """Starts tests/fake_<kind>.py serving queries (a list of query
        definitions), with argv added; RuntimeError if it does not start."""
        self.kind = kind
        self.key = new_key(kind)
        scenario = workdir / "scenario.json"
        scenario.write_text(json.dumps(queries))
        port_file = workdir / "fake.port"
        self.stderr_path = workdir / "fake.stderr"
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(TESTS / f"fake_{kind}.py"), "--scenario", str(scenario),
             "--key", self.key, "--port-file", str(port_file), *argv],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the fake did not start: {self.stderr_path.read_text()}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.root}/api/v1" if kind == "dune" else self.root

    def control(self, method, name, body=None):
        """A call of the control interface; its JSON answer (None if empty)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.root}/_fake/{name}", data=data, method=method)
        with urllib.request.urlopen(req, timeout=60) as resp:
            text = resp.read()
        return json.loads(text) if text.strip() else None

    def log(self):
        return self.control("GET", "log")

    def settings(self, **changes):
        self.control("POST", "settings", changes)

    def reset(self):
        """Clears the request log (and faults); the queries and the page memo stay."""
        self.control("POST", "reset", {})

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


def proc_status(pid, field):
    """A field of /proc/<pid>/status, as its number (kB for sizes)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")
