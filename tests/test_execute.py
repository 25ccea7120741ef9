"""execute: three input forms, errors inside write(), the transaction file."""
import csv
import errno
import io
import os
import subprocess

import pytest

from conftest import execute, requests_to


def rows_of(m, eid):
    with open(m.p("executions", eid, "results.csv"), newline="") as f:
        return list(csv.DictReader(f))


def test_defaults_when_empty(mnt, fake):
    eid = execute(mnt, 1003, "")
    rows = rows_of(mnt, eid)
    assert len(rows) == 7 and {r["chain"] for r in rows} == {"ethereum"}


def test_json_object(mnt):
    eid = execute(mnt, 1003, '{"days": 3, "chain": "base"}')
    rows = rows_of(mnt, eid)
    assert len(rows) == 3 and {r["chain"] for r in rows} == {"base"}


def test_name_value_lines(mnt):
    eid = execute(mnt, 1003, "days=2\nchain=polygon\n")
    rows = rows_of(mnt, eid)
    assert len(rows) == 2 and {r["chain"] for r in rows} == {"polygon"}


def test_shell_round_trip(mnt, fake):
    q = mnt.p("queries", "1003")
    out = subprocess.run(["bash", "-c", f"echo days=4 > {q}/execute && cat {q}/last/results.csv"],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    eid = os.path.basename(os.readlink(q + "/last"))
    assert out.stdout.count(b"\n") == 5
    assert out.stdout.replace(b"\r\n", b"\n")  # CSV bytes as served
    assert fake.executions()["1003"] == 1
    assert eid in os.listdir(mnt.p("executions"))


def test_id_read_back_on_same_file_and_last(mnt):
    fd = os.open(mnt.p("queries", "1001", "execute"), os.O_RDWR)
    try:
        assert os.write(fd, b"\n") == 1
        eid = os.pread(fd, 100, 0).decode()
    finally:
        os.close(fd)
    assert eid.endswith("\n")
    eid = eid.strip()
    assert os.readlink(mnt.p("queries", "1001", "last")) == f"../../executions/{eid}"
    assert os.path.isdir(mnt.p("executions", eid))
    # a fresh open of execute reads nothing
    assert open(mnt.p("queries", "1001", "execute")).read() == ""


def test_each_write_is_one_run(mnt, fake):
    a = execute(mnt, 1001)
    b = execute(mnt, 1001)
    assert a != b
    assert fake.executions()["1001"] == 2
    assert os.readlink(mnt.p("queries", "1001", "last")).endswith(b)


def test_nothing_but_a_write_starts_a_run(mnt, fake):
    q = mnt.p("queries", "1001")
    for _ in range(3):
        os.stat(q + "/execute")
        open(q + "/execute").read()
        fd = os.open(q + "/execute", os.O_WRONLY)
        os.close(fd)
        os.listdir(q)
        subprocess.run(["ls", "-la", q], capture_output=True)
        open(q + "/latest.csv", "rb").read()
    subprocess.run(["bash", "-c", f": > {q}/execute"], capture_output=True)  # open+trunc, no write
    assert fake.executions()["1001"] == 0
    assert requests_to(fake, "/execute") == []


@pytest.mark.parametrize("text, reason", [
    ("{bad json", "not valid JSON"),
    ("[1, 2]", "must be an object"),
    ("no equals sign", "name=value"),
    ("a=1\x00", "NUL"),
])
def test_bad_input_is_einval_and_sends_nothing(mnt, fake, text, reason):
    fake.reset()
    with pytest.raises(OSError) as e:
        with open(mnt.p("queries", "1003", "execute"), "w") as f:
            f.write(text)
    assert e.value.errno == errno.EINVAL
    assert reason in open(mnt.p("queries", "1003", "error")).read()
    assert requests_to(fake, "/execute") == []


def test_api_400_reaches_bash(mnt, fake):
    q = mnt.p("queries", "1003")
    out = subprocess.run(["bash", "-c", f"echo nope=1 > {q}/execute"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0
    assert "Invalid argument" in out.stderr
    assert open(q + "/error").read() == "unknown parameters (nope)\n"
    assert fake.executions()["1003"] == 0


def test_error_cleared_after_success(mnt):
    q = mnt.p("queries", "1003")
    with pytest.raises(OSError):
        with open(q + "/execute", "w") as f:
            f.write("nope=1")
    assert open(q + "/error").read() != ""
    execute(mnt, 1003, "days=1")
    assert open(q + "/error").read() == ""


def test_performance_option_sent(mounts, fake):
    m = mounts(options=["performance=large"])
    eid = execute(m, 1001)
    open(m.p("executions", eid, "results.csv"), "rb").read()  # waits for the end
    doc = open(m.p("executions", eid, "status.json")).read()
    assert '"execution_cost_credits": 20' in doc or '"execution_cost_credits":20' in doc


def test_signal_during_execute_write_never_makes_two_runs(mnt, fake):
    # a writer that retries on EINTR (Python, Go) must not start a second run
    fake.add_fault(match="/execute", action="delay", seconds=1.5)
    script = (
        "import os, signal, sys\n"
        "signal.signal(signal.SIGINT, lambda *a: None)\n"
        f"fd = os.open({mnt.p('queries', '1001', 'execute')!r}, os.O_RDWR)\n"
        "os.write(fd, b'\\n')\n"
        "print(os.pread(fd, 100, 0).decode().strip())\n")
    proc = subprocess.Popen(["/usr/bin/python3", "-c", script], stdout=subprocess.PIPE, text=True)
    import time
    time.sleep(0.5)
    proc.send_signal(__import__("signal").SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert fake.executions()["1001"] == 1
    assert os.readlink(mnt.p("queries", "1001", "last")).endswith(out.strip())
