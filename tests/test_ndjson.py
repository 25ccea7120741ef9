"""results.ndjson and latest.ndjson: one JSON object a line, for jq and line tools."""
import json
import os
import subprocess

from conftest import execute, fake_json_rows, json_rows


def read(path):
    with open(path, "rb") as f:
        return f.read()


def lines_of(data):
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def test_results_ndjson_is_a_row_a_line(mnt, fake):
    eid = execute(mnt, 1005)  # dune: 5 pages
    data = read(mnt.p("executions", eid, "results.ndjson"))
    rows = [json.loads(line) for line in lines_of(data)]
    assert all(isinstance(r, dict) for r in rows)
    assert rows == fake_json_rows(fake, eid)
    # the same rows, as the same bytes, as results.json holds
    doc = json.loads(read(mnt.p("executions", eid, "results.json")))
    assert rows == json_rows(fake, doc)


def test_ndjson_keeps_big_integers_exact(mnt, fake):
    eid = execute(mnt, 1007)
    data = read(mnt.p("executions", eid, "results.ndjson"))
    assert b"2985646787349243786078" in data
    assert [json.loads(line) for line in lines_of(data)] == fake_json_rows(fake, eid)


def test_latest_ndjson_and_jq(mnt, fake):
    path = mnt.p("queries", "1005", "latest.ndjson")
    want = json_rows(fake, json.loads(read(mnt.p("queries", "1005", "latest.json"))))
    count = subprocess.run(["jq", "-s", "length", path], capture_output=True, check=True, timeout=60)
    assert int(count.stdout) == len(want)
    names = subprocess.run(["jq", "-r", ".name", path], capture_output=True, check=True, timeout=60)
    assert names.stdout.decode().splitlines() == [str(r["name"]) for r in want]
    head = subprocess.run(["head", "-n", "2", path], capture_output=True, check=True, timeout=60)
    assert [json.loads(line) for line in head.stdout.splitlines()] == want[:2]


def test_ndjson_listed_beside_json(mnt, fake):
    eid = execute(mnt, 1001)
    assert "results.ndjson" in set(os.listdir(mnt.p("executions", eid)))
    assert "latest.ndjson" in set(os.listdir(mnt.p("queries", "1001")))
