"""execute: three input forms, errors inside write(), the transaction file."""
import csv
import errno
import os
import subprocess

import pytest

from conftest import execute, fake_csv, fault_at, kind_of, message, requests_for


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
    assert out.stdout == fake_csv(fake, eid)  # CSV bytes as served
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


def test_a_shell_reads_the_id_back_on_the_same_file(mnt, fake):
    """bash cannot seek: after `echo ... >&3` its read starts where the write
    ended, and still gets the whole id."""
    q = mnt.p("queries", "1003")
    out = subprocess.run(["bash", "-c", f"exec 3<>{q}/execute && echo days=3 >&3 && "
                          f"read -r eid <&3 && echo \"$eid\" && exec 3>&-"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    eid = out.stdout.strip()
    assert os.readlink(q + "/last") == f"../../executions/{eid}"
    assert fake.executions()["1003"] == 1


def test_each_write_is_one_run(mnt, fake):
    a = execute(mnt, 1001)
    b = execute(mnt, 1001)
    if kind_of(fake) == "redash":
        # Redash hands back the job already running the same query text
        assert a == b and fake.executions()["1001"] == 1
    else:
        assert a != b and fake.executions()["1001"] == 2
    assert len(requests_for(fake, "execute", 1001)) == 2
    assert os.readlink(mnt.p("queries", "1001", "last")).endswith(b)


def test_a_request_split_over_writes_starts_one_run(mnt, fake):
    # bash's printf writes each line on its own: the second write is refused
    q = mnt.p("queries", "1003")
    out = subprocess.run(["bash", "-c", f"printf 'days=2\\nchain=base\\n' > {q}/execute"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "Invalid argument" in out.stderr
    eid = os.path.basename(os.readlink(q + "/last"))
    assert f"already started execution {eid}" in open(q + "/error").read()
    assert fake.executions()["1003"] == 1
    assert len(requests_for(fake, "execute", 1003)) == 1


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
    assert requests_for(fake, "execute", 1001) == []


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
    assert fake.log() == []


def test_api_400_reaches_bash(mnt, fake):
    q = mnt.p("queries", "1003")
    out = subprocess.run(["bash", "-c", f"echo nope=1 > {q}/execute"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0
    assert "Invalid argument" in out.stderr
    # dune's API refuses it; for redash execfs knows the definitions and sends nothing
    assert open(q + "/error").read() == message(
        fake, dune="unknown parameters (nope)\n", redash="the query has no parameter named nope\n")
    assert fake.executions()["1003"] == 0


def test_api_400_message_reaches_the_error_file(mnt, fake):
    q = mnt.p("queries", "1003")
    text = message(fake, dune='{"nope": 1}', redash='{"days": "many"}')
    out = subprocess.run(["bash", "-c", f"echo '{text}' > {q}/execute"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0 and "Invalid argument" in out.stderr
    assert open(q + "/error").read() == message(
        fake, dune="unknown parameters (nope)\n",
        redash="parameter days: expected a number\n")
    assert fake.executions()["1003"] == 0


@pytest.mark.backends("redash")
def test_redash_parameters_typed_and_defaults_filled(mnt, fake):
    import json
    eid = execute(mnt, 1009, "days=30\nspan=2020-01-01..2020-12-31\ntags=b, c\n")
    post = requests_for(fake, "execute", 1009)[-1]
    assert json.loads(post["body"]) == {
        "parameters": {"days": 30, "label": "all", "since": "2024-01-01",
                       "span": {"start": "2020-01-01", "end": "2020-12-31"}, "kind": "dex",
                       "tags": ["b", "c"]},
        "max_age": 0}
    rows = rows_of(mnt, eid)
    assert rows[0]["days"] == "30" and json.loads(rows[0]["tags"]) == ["b", "c"]
    # the query's definitions come first, then the run: a GET, then one POST
    log = [(e["method"], e["path"]) for e in fake.log()]
    assert log[:2] == [("GET", "/api/queries/1009"), ("POST", "/api/queries/1009/results")]


@pytest.mark.backends("redash")
def test_redash_400_from_the_api(mnt, fake):
    # a value execfs cannot judge (an enum option), judged by Redash
    q = mnt.p("queries", "1009")
    out = subprocess.run(["bash", "-c", f"echo kind=nosuch > {q}/execute"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0 and "Invalid argument" in out.stderr
    assert open(q + "/error").read() == ("The following parameter values are incompatible with "
                                          "their definitions: kind\n")
    assert "HTTP 400" in mnt.log()
    assert fake.executions()["1009"] == 0


def test_error_cleared_after_success(mnt):
    q = mnt.p("queries", "1003")
    with pytest.raises(OSError):
        with open(q + "/execute", "w") as f:
            f.write("nope=1")
    assert open(q + "/error").read() != ""
    execute(mnt, 1003, "days=1")
    assert open(q + "/error").read() == ""


@pytest.mark.backends("dune")
def test_performance_option_sent(mounts, fake):
    m = mounts(options=["performance=large"])
    eid = execute(m, 1001)
    open(m.p("executions", eid, "results.csv"), "rb").read()  # waits for the end
    doc = open(m.p("executions", eid, "status.json")).read()
    assert '"execution_cost_credits": 20' in doc or '"execution_cost_credits":20' in doc


def test_signal_during_execute_write_never_makes_two_runs(mnt, fake):
    # a writer that retries on EINTR (Python, Go) must not start a second run
    fake.add_fault(**fault_at(fake, "execute"), action="delay", seconds=1.5)
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
