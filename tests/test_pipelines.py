"""The pipeline examples of mount-examples/, each run against the fake through
a real mount, on both APIs.

Every expected value is computed here, in Python, from the bytes the fake
serves (fake_csv, fake_latest_csv) and, as a cross-check, from its JSON rows;
never written down. The fake's queries 1001..1006 have a `note` column whose
quoted cells hold commas, doubled quotes and line breaks (LF, and CR/LF inside
the quotes); Redash ends every line with CRLF: the CSV-parsing pipelines (csv
module, pandas, sqlite3, Miller) are run over them, and the shell pipeline,
which cannot parse CSV, must refuse them.
"""
import collections
import csv
import io
import json
import math
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import ROOT, execute, fake_csv, fake_json_rows, fake_latest_csv, kind_of, need, requests_for

EXAMPLES = os.path.join(ROOT, "mount-examples")
INTEGER = re.compile(r"[+-]?[0-9]+")
DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def run(argv, m=None, env=None, cwd=None, check=True, timeout=120):
    """Runs an example; MNT names the mount. Its stdout and stderr as text."""
    full = dict(os.environ)
    full.pop("MNT", None)
    if m is not None:
        full["MNT"] = m.path
    full.update(env or {})
    r = subprocess.run(argv, capture_output=True, env=full, cwd=cwd, timeout=timeout)
    r.out, r.err = r.stdout.decode(), r.stderr.decode()
    if check:
        assert r.returncode == 0, f"{argv}: exit {r.returncode}\nstdout:\n{r.out}\nstderr:\n{r.err}"
    return r


def example(name):
    return os.path.join(EXAMPLES, name)


def records(data):
    """The CSV's header and rows, parsed from the fake's bytes."""
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    return rows[0], rows[1:]


def column(data, name):
    header, rows = records(data)
    i = header.index(name)
    return [r[i] for r in rows]


def wait_result(m, eid):
    """Reads the run's results.csv through the mount (waits for the run)."""
    with open(m.p("executions", eid, "results.csv"), "rb") as f:
        return f.read()


def number(text):
    if INTEGER.fullmatch(text):
        return int(text)
    if DECIMAL.fullmatch(text):
        return float(text)
    return None


def check_notes(data, fake, eid):
    """The fake's CSV holds the hard note cells, and parsed they are the JSON's."""
    notes = column(data, "note")
    assert any("\r\n" in n for n in notes) and any("\n" in n.replace("\r\n", "") for n in notes)
    assert any("," in n for n in notes) and any('"' in n for n in notes) and "" in notes
    assert notes == [r.get("note") or "" for r in fake_json_rows(fake, eid)]


# ---- the shell pipeline ------------------------------------------------------

def test_shell_pipeline(fake, mnt):
    r = run(["bash", example("pipeline-shell.sh"), "1003", "volume", "chain",
             "days=90", "chain=polygon"], m=mnt, env={"MATCH": " 14:"})
    lines = r.out.splitlines()
    eid = lines[0].removeprefix("execution: ")
    # both parameters reached the API in one run (bash's own printf would
    # have sent them in two write()s: a run with days=90 alone, then EINVAL)
    assert len(requests_for(fake, "execute", 1003)) == 1

    data = fake_csv(fake, eid)
    assert b'"' not in data
    text_lines = data.decode().replace("\r\n", "\n").splitlines()
    header, rows = records(data)
    assert len(rows) == 90 and {row[header.index("chain")] for row in rows} == {"polygon"}
    total = 0.0
    for row in rows:
        total += float(row[header.index("volume")])
    by = collections.Counter(row[header.index("chain")] for row in rows)
    want_by = sorted(by.items(), key=lambda kv: (-kv[1], kv[0].encode()))
    matching = sum(1 for line in text_lines[1:] if re.search(" 14:", line))
    assert matching > 0

    assert lines[1] == f"rows: {len(rows)}"
    assert lines[2] == f"sum(volume): {total:.15g}"
    assert lines[3] == "rows by chain:"
    got_by = [(ln.split(None, 1)[1], int(ln.split(None, 1)[0])) for ln in lines[4:4 + len(want_by)]]
    assert got_by == want_by
    assert lines[4 + len(want_by):] == [f"rows matching / 14:/: {matching}"]
    assert r.err == ""


def test_shell_pipeline_refuses_quoted_fields(fake, mnt):
    r = run(["bash", example("pipeline-shell.sh"), "1001", "n", "name"], m=mnt, check=False)
    assert r.returncode == 1
    assert "has quoted fields" in r.err and "pipeline_csv.py" in r.err
    assert r.out == ""
    # what it refused: the run it started, with the note column's quoted cells
    eid = os.readlink(mnt.p("queries", "1001", "last")).rsplit("/", 1)[1]
    assert b'"' in fake_csv(fake, eid)
    assert eid in r.err


def test_shell_pipeline_names_a_missing_column(fake, mnt):
    r = run(["bash", example("pipeline-shell.sh"), "1003", "nosuch", "chain"], m=mnt, check=False)
    assert r.returncode == 1
    assert "no column 'nosuch'" in r.err and r.out == ""


# ---- Python's csv module -----------------------------------------------------

def summary(data):
    """What pipeline_csv.py should print for these bytes: rows, and per column
    (empty cells, cells with a line break, the sum or None)."""
    header, rows = records(data)
    cols = {}
    for i, name in enumerate(header):
        cells = [r[i] for r in rows if i < len(r)]
        full = [c for c in cells if c != ""]
        values = [number(c) for c in full]
        if not full or any(v is None for v in values):
            total = None
        elif all(isinstance(v, int) for v in values):
            total = sum(values)
        else:
            total = 0.0
            for v in values:
                total += v
        multiline = sum(1 for c in full if "\n" in c or "\r" in c)
        cols[name] = (len(cells) - len(full), multiline, total)
    return len(rows), cols


def parse_summary(text):
    lines = text.splitlines()
    assert lines[0].startswith("file: ") and lines[1].startswith("rows: ")
    assert lines[2].split() == ["column", "empty", "multiline", "sum"]
    cols = {}
    for line in lines[3:]:
        name, empty, multiline, total = line.rsplit(None, 3)
        cols[name] = (int(empty), int(multiline), None if total == "-" else total)
    return int(lines[1][len("rows: "):]), cols


def assert_summary(text, data):
    got_rows, got = parse_summary(text)
    want_rows, want = summary(data)
    assert got_rows == want_rows
    assert list(got) == list(want)
    for name, (empty, multiline, total) in want.items():
        g_empty, g_multiline, g_total = got[name]
        assert (g_empty, g_multiline) == (empty, multiline), name
        if total is None or isinstance(total, int):
            assert g_total == (None if total is None else str(total)), name  # ints exact
        else:
            assert g_total == f"{total:.15g}", name


def test_csv_module_latest_with_multiline_notes(fake, mnt):
    r = run([sys.executable, example("pipeline_csv.py"), "1001"], m=mnt)
    data = fake_latest_csv(fake, 1001)
    assert_summary(r.out, data)
    _, cols = summary(data)
    assert cols["note"][:2] == (column(data, "note").count(""), 2)  # two cells with line breaks
    assert r.err == ""


def test_csv_module_results_of_a_run(fake, mnt):
    eid = execute(mnt, 1005)  # dune: pages joined
    path = mnt.p("executions", eid, "results.csv")
    r = run([sys.executable, example("pipeline_csv.py"), path], m=mnt)
    data = fake_csv(fake, eid)
    check_notes(data, fake, eid)
    assert_summary(r.out, data)
    assert parse_summary(r.out)[0] == len(fake_json_rows(fake, eid)) == 5000


def test_csv_module_sums_long_integers_exactly(fake, mnt):
    eid = execute(mnt, 1007)
    r = run([sys.executable, example("pipeline_csv.py"), mnt.p("executions", eid, "results.csv")])
    data = fake_csv(fake, eid)
    assert_summary(r.out, data)
    want = sum(int(v) for v in column(data, "amount"))
    assert want > 2 ** 64 and parse_summary(r.out)[1]["amount"][2] == str(want)


def test_csv_module_reports_a_failed_run(fake, mnt):
    eid = execute(mnt, 1004)
    r = run([sys.executable, example("pipeline_csv.py"), mnt.p("executions", eid, "results.csv")],
            check=False)
    assert r.returncode == 1 and "Input/output error" in r.err and r.out == ""


# ---- pandas ------------------------------------------------------------------

def pandas_numeric(cells):
    """Whether pandas.read_csv makes this column numeric (int64 or float64)."""
    values = [number(c) for c in cells if c != ""]
    if not values or any(v is None for v in values):
        return False
    return all(isinstance(v, float) or -2 ** 63 <= v < 2 ** 64 for v in values)


def same_cells(cells, values, numeric):
    for text, value in zip(cells, values):
        if text == "" or value is None:
            if not (text == "" and value is None):
                return False
        elif numeric:
            if not isinstance(value, (int, float)) or float(text) != value:
                return False
        elif text != value:
            return False
    return len(cells) == len(values)


def test_pandas_csv_and_json_with_multiline_notes(fake, mnt):
    pytest.importorskip("pandas", reason="pandas is not installed (Debian: python3-pandas)")
    eid = execute(mnt, 1001)
    wait_result(mnt, eid)
    for arg, data, rows in (
            (mnt.p("executions", eid), fake_csv(fake, eid), fake_json_rows(fake, eid)),
            ("1001", fake_latest_csv(fake, 1001), fake_json_rows(fake, eid))):
        # (latest is the run just made: 1001's newest result, default parameters)
        assert data == fake_csv(fake, eid)
        check_notes(data, fake, eid)
        r = run([sys.executable, example("pipeline_pandas.py"), arg], m=mnt)
        header, body = records(data)
        shape = f"{len(body)} rows x {len(header)} columns: {', '.join(header)}"
        want = [f"csv: {shape}", f"json: {shape}", "sums (csv, json):"]
        same = []
        for i, name in enumerate(header):
            cells = [row[i] for row in body]
            values = [row.get(name) for row in rows]
            numeric = pandas_numeric(cells)
            if numeric:
                by_csv = by_json = 0
                for c in cells:
                    by_csv += number(c) if c else 0
                for v in values:
                    by_json += v or 0
                want.append(f"  {name}: {by_csv:.15g} {by_json:.15g}")
            if same_cells(cells, values, numeric):
                same.append(name)
        assert "note" in same  # the CR/LF, quotes and commas came through both ways
        different = [n for n in header if n not in same]
        want += [f"same in csv and json: {', '.join(same) or '-'}",
                 f"different: {', '.join(different) or '-'}"]
        if kind_of(fake) == "redash":
            assert different == ["day"]  # Redash's CSV writes dates its own way
        assert r.out.splitlines() == want
        assert r.err == ""


# ---- sqlite3 -----------------------------------------------------------------

def grouped(data, by, of):
    """Per value of `by`: the rows, and the count, sum, min and max of the
    non-empty cells of `of` (numbers)."""
    header, rows = records(data)
    b, o = header.index(by), header.index(of)
    groups = collections.OrderedDict()
    for r in rows:
        g = groups.setdefault(r[b], {"rows": 0, "values": []})
        g["rows"] += 1
        if r[o] != "":
            g["values"].append(number(r[o]))
    return groups


def close(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return math.isclose(a, b, rel_tol=1e-13, abs_tol=1e-300)


def sqlite_json(text):
    return json.loads(text) if text.strip() else []


def assert_sqlite_groups(out, data, by, of):
    want = []
    for key, g in grouped(data, by, of).items():
        values = g["values"]
        if not values:
            total = None
        elif all(isinstance(v, int) and -2 ** 63 <= v < 2 ** 63 for v in values):
            total = sum(values)
        else:
            total = math.fsum(values)
        want.append({by: key, "rows": g["rows"], f"sum_{of}": total, f"nonempty_{of}": len(values)})
    want.sort(key=lambda d: (-d["rows"], d[by].encode()))
    got = sqlite_json(out)
    assert [(d[by], d["rows"], d[f"nonempty_{of}"]) for d in got] == \
        [(d[by], d["rows"], d[f"nonempty_{of}"]) for d in want]
    for g, w in zip(got, want):
        assert (g[f"sum_{of}"] is None) == (w[f"sum_{of}"] is None)
        if w[f"sum_{of}"] is not None:
            assert close(g[f"sum_{of}"], w[f"sum_{of}"]), (g, w)


def test_sqlite_groups_multiline_notes(fake, mnt):
    need("sqlite3")
    r = run(["bash", example("pipeline-sqlite.sh"), "1001", "note", "n"], m=mnt, env={"MODE": "json"})
    data = fake_latest_csv(fake, 1001)
    assert_sqlite_groups(r.out, data, "note", "n")
    assert any("\r\n" in d["note"] for d in sqlite_json(r.out))  # the CR inside quotes is kept
    assert r.err == ""  # no row of the wrong width


def test_sqlite_results_of_a_run_and_own_sql(fake, mnt):
    need("sqlite3")
    eid = execute(mnt, 1005)
    path = mnt.p("executions", eid, "results.csv")
    r = run(["bash", example("pipeline-sqlite.sh"), path, "day", "value"], env={"MODE": "json"})
    data = fake_csv(fake, eid)
    check_notes(data, fake, eid)
    assert_sqlite_groups(r.out, data, "day", "value")
    # any SQL over the table: the notes' bytes, CRs, line feeds, quotes, as parsed here
    sql = ("SELECT count(*) AS rows, sum(note = '') AS empty, "
           "sum(length(note) - length(replace(note, char(13), ''))) AS crs, "
           "sum(length(note) - length(replace(note, char(10), ''))) AS lfs, "
           "sum(length(note) - length(replace(note, '\"', ''))) AS quotes FROM results")
    r = run(["bash", example("pipeline-sqlite.sh"), path], env={"MODE": "json", "SQL": sql})
    notes = column(data, "note")
    assert sqlite_json(r.out) == [{
        "rows": len(notes), "empty": notes.count(""),
        "crs": sum(n.count("\r") for n in notes), "lfs": sum(n.count("\n") for n in notes),
        "quotes": sum(n.count('"') for n in notes)}]
    assert r.err == ""


def test_sqlite_refuses_unknown_column_and_failed_run(fake, mnt):
    need("sqlite3")
    r = run(["bash", example("pipeline-sqlite.sh"), "1001", "nosuch", "n"], m=mnt, check=False)
    assert r.returncode != 0 and "no such column: nosuch" in r.err  # not a string literal
    eid = execute(mnt, 1004)
    r = run(["bash", example("pipeline-sqlite.sh"), mnt.p("executions", eid, "results.csv"), "n", "n"],
            check=False)
    assert r.returncode == 1 and "Input/output error" in r.err and r.out == ""


# ---- Miller ------------------------------------------------------------------

def miller_groups(data, by, of):
    """What `stats1 -a count,sum,min,max -f OF -g BY then sort -nr OF_sum -f BY`
    prints. Miller 6.6 reads CSV a line at a time: a CR/LF inside a quoted
    field comes out as LF (pipeline-miller.sh says so). Integers too long for
    64 bits are summed as floats (the script turns them into floats)."""
    groups = collections.OrderedDict()
    for key, g in grouped(data, by, of).items():
        key = key.replace("\r\n", "\n")
        values = [float(v) if isinstance(v, int) and not -2 ** 63 <= v < 2 ** 63 else v
                  for v in g["values"]]
        if key in groups:
            groups[key] += values
        else:
            groups[key] = values
    want = []
    for key, values in groups.items():
        total = 0
        for v in values:
            total += v
        want.append({by: key, f"{of}_count": len(values), f"{of}_sum": total,
                     f"{of}_min": min(values) if values else "", f"{of}_max": max(values) if values else ""})
    want.sort(key=lambda d: (-d[f"{of}_sum"], d[by].encode()))
    return want


def assert_miller_groups(out, data, by, of):
    got, want = json.loads(out), miller_groups(data, by, of)
    assert [(d[by], d[f"{of}_count"]) for d in got] == [(d[by], d[f"{of}_count"]) for d in want]
    for g, w in zip(got, want):
        for stat in ("sum", "min", "max"):
            name = f"{of}_{stat}"
            assert (g[name] == "") == (w[name] == ""), (g, w)
            if w[name] != "":
                assert close(g[name], w[name]), (name, g, w)


def test_miller_groups_multiline_notes(fake, mnt):
    need("mlr")
    r = run(["bash", example("pipeline-miller.sh"), "1001", "note", "n"], m=mnt, env={"OFMT": "json"})
    data = fake_latest_csv(fake, 1001)
    assert_miller_groups(r.out, data, "note", "n")
    assert any("\n" in d["note"] for d in json.loads(r.out))
    assert r.err == ""


def test_miller_results_of_a_run(fake, mnt):
    need("mlr")
    eid = execute(mnt, 1003, "days=40\n")
    path = mnt.p("executions", eid, "results.csv")
    r = run(["bash", example("pipeline-miller.sh"), path, "chain", "volume"], env={"OFMT": "json"})
    assert_miller_groups(r.out, fake_csv(fake, eid), "chain", "volume")
    eid = execute(mnt, 1005)
    r = run(["bash", example("pipeline-miller.sh"), mnt.p("executions", eid, "results.csv"),
             "note", "value"], env={"OFMT": "json"})
    data = fake_csv(fake, eid)
    check_notes(data, fake, eid)
    assert_miller_groups(r.out, data, "note", "value")
    # the default output, for people
    r = run(["bash", example("pipeline-miller.sh"), path, "chain", "volume"])
    assert r.out.split("\n")[0].split() == ["chain", "volume_count", "volume_sum", "volume_min", "volume_max"]


def test_miller_long_integers_and_errors(fake, mnt):
    need("mlr")
    eid = execute(mnt, 1007)
    path = mnt.p("executions", eid, "results.csv")
    r = run(["bash", example("pipeline-miller.sh"), path, "label", "amount"], env={"OFMT": "json"})
    data = fake_csv(fake, eid)
    assert max(int(v) for v in column(data, "amount")) > 2 ** 64
    assert_miller_groups(r.out, data, "label", "amount")  # not left out of the sum
    r = run(["bash", example("pipeline-miller.sh"), path, "nosuch", "amount"], check=False)
    assert r.returncode == 1 and "no column 'nosuch'" in r.err
    # a failed run: an error, not Miller reading EIO for ever
    eid = execute(mnt, 1004)
    r = run(["bash", example("pipeline-miller.sh"), mnt.p("executions", eid, "results.csv"), "n", "n"],
            check=False, timeout=30)
    assert r.returncode == 1 and "Input/output error" in r.err and r.out == ""


# ---- make --------------------------------------------------------------------

def test_makefile_remakes_only_when_the_result_changed(fake, mounts, tmp_path):
    need("make")
    m = mounts(options=["max_age=0"])
    work = tmp_path / "work"
    work.mkdir()

    def make(*args, check=True):
        return run(["make", "-f", example("Makefile"), f"MNT={m.path}", f"PYTHON={sys.executable}",
                    *args], cwd=work, check=check)

    def mtimes(*names):
        return [os.stat(work / n).st_mtime_ns for n in names]

    report = work / "report-1001.txt"
    copy = work / "latest-1001.csv"
    first = fake_latest_csv(fake, 1001)
    make("QID=1001")
    assert copy.read_bytes() == first
    assert_summary(report.read_text(), first)
    before = mtimes(report.name, copy.name)

    # nothing changed: nothing remade
    r = make("QID=1001")
    assert "new result" not in r.out and mtimes(report.name, copy.name) == before

    # a new result: remade, from it
    eid = execute(m, 1001)
    wait_result(m, eid)
    second = fake_latest_csv(fake, 1001)
    assert second != first and second == fake_csv(fake, eid)
    r = make("QID=1001")
    assert "new result" in r.out and copy.read_bytes() == second
    assert_summary(report.read_text(), second)
    before = mtimes(report.name, copy.name)

    # one run's report: made once
    run_report = work / f"run-{eid}.txt"
    make(f"EID={eid}")
    assert_summary(run_report.read_text(), fake_csv(fake, eid))
    run_before = mtimes(run_report.name)
    r = make(f"EID={eid}")
    assert "Nothing to be done" in r.out and mtimes(run_report.name) == run_before

    # a remount: the results keep the dates of their runs (older than the
    # reports), and nothing is remade
    while time.time() < os.stat(report).st_mtime + 1.05:
        time.sleep(0.05)
    ended = os.stat(m.p("executions", eid, "results.csv")).st_mtime
    m.stop()
    m = mounts(options=["max_age=0"])
    assert os.stat(m.p("executions", eid, "results.csv")).st_mtime == ended
    assert ended <= os.stat(run_report).st_mtime
    r = make("QID=1001", f"EID={eid}")
    assert "new result" not in r.out and mtimes(report.name, copy.name) == before
    assert mtimes(run_report.name) == run_before

    # make never started a run: the one execute above is all
    assert len(requests_for(fake, "execute", 1001)) == 1


def test_makefile_leaves_nothing_behind_on_errors(fake, mnt, tmp_path):
    need("make")
    work = tmp_path / "work"
    work.mkdir()

    def make(*args):
        return run(["make", "-f", example("Makefile"), f"MNT={mnt.path}", f"PYTHON={sys.executable}",
                    *args], cwd=work, check=False)

    r = make("QID=1007")  # never run: ENODATA
    assert r.returncode != 0 and "No data available" in r.err
    eid = execute(mnt, 1004)  # fails: EIO
    r = make(f"EID={eid}")
    assert r.returncode != 0 and "Input/output error" in r.err
    r = make("EID=NoSuchRun")  # unknown: ENOENT, so make has no way to it
    assert r.returncode != 0 and "No rule to make target" in r.err
    r = make()
    assert r.returncode == 2 and "usage" in r.err
    assert os.listdir(work) == []
