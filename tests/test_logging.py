"""Logging: stderr in the foreground, syslog when daemonised, -d for debug.

Every line about a request names the path in the mount it serves and the
request (method and URL); none holds the key.
"""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import EXECFS, execute, fault_at, source_of

REQUEST_LINE = re.compile(r"^execfs: debug: ((?:queries|executions)/\S+): (GET|POST) "
                          r"(http://127\.0\.0\.1:\d+/\S*) \(attempt (\d+)\)$")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def request_lines(log):
    return [REQUEST_LINE.match(line) for line in log.splitlines() if REQUEST_LINE.match(line)]


def test_debug_names_the_path_and_the_request_of_every_call(mounts, fake):
    m = mounts(args=["-d"])
    eid = execute(m, 1003, "days=3\n")
    body = read(m.p("executions", eid, "results.csv"))
    assert body
    read(m.p("queries", "1001", "latest.csv"))
    lines = request_lines(m.log())
    sent = [e for e in fake.log() if not e["path"].startswith("/_fake")]
    # one debug line per request the fake saw, each naming a path of the mount
    assert len(lines) == len(sent), (m.log(), sent)
    paths = {line.group(1) for line in lines}
    assert "queries/1003/execute" in paths
    assert any(p.startswith(f"executions/{eid}/results.") for p in paths), paths
    assert any(p.startswith("queries/1001/") for p in paths), paths
    # and each line's URL is a request the fake got, in the same order
    assert [line.group(2) for line in lines] == [e["method"] for e in sent]
    assert [line.group(3).split("/", 3)[3] for line in lines] == \
        [e["path"].lstrip("/") + ("?" + e["query"] if e.get("query") else "") for e in sent]
    assert fake.key not in m.log()


def test_without_d_there_are_no_debug_lines(mnt, fake):
    eid = execute(mnt, 1003)
    read(mnt.p("executions", eid, "results.csv"))
    assert "debug:" not in mnt.log()
    assert "mounted " in mnt.log()


def test_a_retry_names_the_path_the_request_and_the_status(mnt, fake):
    fake.add_fault(**fault_at(fake, "csv"), action="status", code=503, count=1)
    eid = execute(mnt, 1003)
    read(mnt.p("executions", eid, "results.csv"))
    retries = [line for line in mnt.log().splitlines() if "retrying in" in line]
    assert len(retries) == 1, mnt.log()
    assert re.match(rf"^execfs: info: executions/{eid}/results.csv: GET http://\S+: HTTP 503, "
                    r"retrying in \d+ ms$", retries[0]), retries


def test_a_failure_names_the_path_the_request_and_the_api_message(mnt, fake):
    with pytest.raises(FileNotFoundError):
        read(mnt.p("queries", "999999", "latest.csv"))
    lines = [line for line in mnt.log().splitlines() if "error:" in line]
    assert len(lines) == 1, mnt.log()
    assert re.match(r"^execfs: error: queries/999999/\S*: GET http://127\.0\.0\.1:\d+/\S+: "
                    r"HTTP 404: ", lines[0]), lines[0]
    assert fake.key not in mnt.log()


SYSLOG_RUN = r"""
import json, os, socket, subprocess, sys, time
execfs, source, key, tmp = sys.argv[1:5]
real = os.path.join(tmp, "realdev")
os.makedirs(real)
subprocess.run(["mount", "--bind", "/dev", real], check=True)
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/dev"], check=True)
for name in ("null", "zero", "fuse", "urandom"):
    open("/dev/" + name, "w").close()
    subprocess.run(["mount", "--bind", os.path.join(real, name), "/dev/" + name], check=True)
log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
log.settimeout(10)
mnt, cache = os.path.join(tmp, "mnt"), os.path.join(tmp, "cache")
os.makedirs(mnt)
env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
env["EXECFS_API_KEY"] = key
out = {}
started = subprocess.run([execfs, source, mnt, "-o", "cache_dir=" + cache], env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
out["rc"], out["stderr"] = started.returncode, started.stderr.decode()
try:
    for _ in range(200):
        if os.path.ismount(mnt):
            break
        time.sleep(0.05)
    try:
        open(os.path.join(mnt, "queries", "999999", "latest.csv"), "rb").read()
        out["read"] = "no error"
    except OSError as e:
        out["read"] = e.errno
finally:
    subprocess.run(["fusermount3", "-u", mnt])
lines = []
try:
    while not any("unmounted" in line for line in lines):
        lines.append(log.recv(4096).decode())
except socket.timeout:
    pass
out["syslog"] = lines
print(json.dumps(out))
"""


@pytest.mark.backends("dune")
def test_daemonised_it_logs_to_syslog(fake, tmp_path):
    """Without -f the daemon logs to syslog (/dev/log), not to a terminal.
    The test runs in a mount namespace of its own with a listener of its own
    bound at /dev/log, so the machine's syslog is neither needed nor touched."""
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("cannot make a mount namespace (unshare -m)")
    script = tmp_path / "syslog_run.py"
    script.write_text(SYSLOG_RUN)
    run = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                          str(script), EXECFS, source_of(fake), fake.key, str(tmp_path)],
                         capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr.decode()
    out = json.loads(run.stdout)
    assert out["rc"] == 0 and out["stderr"] == "", out
    assert out["read"] == 2  # ENOENT
    text = "\n".join(out["syslog"])
    # <facility*8+severity>: LOG_DAEMON is 3; info 6, error 3
    assert re.search(r"<30>.*execfs\[\d+\]: mounted ", text), text
    assert re.search(r"<27>.*execfs\[\d+\]: queries/999999/\S*: GET http://\S+: HTTP 404", text), text
    assert re.search(r"<30>.*execfs\[\d+\]: unmounted ", text), text
    assert fake.key not in text
