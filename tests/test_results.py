"""Exact results, single flight, the on-disk cache and latest.*."""
import json
import mmap
import os
import subprocess
import threading

import pytest

from conftest import (execute, fake_csv, fake_json_rows, fake_latest_csv, json_rows, kind_of,
                      requests_for, requests_to, wait_for)


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


@pytest.mark.backends("dune")  # redash has no pages
def test_csv_byte_identical_across_pages(mnt, fake):
    eid = execute(mnt, 1005)
    got = read(mnt.p("executions", eid, "results.csv"))
    want = fake_csv(fake, eid)
    assert got == want
    assert got.count(b"n,name,value,day,note") == 1
    assert len(requests_to(fake, f"/execution/{eid}/results/csv")) >= 6  # 5000 rows, 1000 a page


@pytest.mark.backends("redash")
def test_redash_result_passed_through_byte_for_byte(mnt, fake):
    eid = execute(mnt, 1005)
    csv_bytes = read(mnt.p("executions", eid, "results.csv"))
    assert csv_bytes == fake_csv(fake, eid)
    assert csv_bytes.endswith(b"\r\n") and csv_bytes.count(b"\r\n") >= 5001  # CRLF kept
    assert read(mnt.p("executions", eid, "results.json")) == fake.truth_json(eid)
    rid = fake.result_id(eid)
    assert [e["path"] for e in requests_for(fake, "results", eid)] == [
        f"/api/query_results/{rid}.csv"]


@pytest.mark.backends("dune")
def test_json_is_one_document_with_every_row(mnt, fake):
    eid = execute(mnt, 1005)
    doc = json.loads(read(mnt.p("executions", eid, "results.json")))
    assert doc["execution_id"] == eid
    assert doc["state"] == "QUERY_STATE_COMPLETED"
    assert "next_uri" not in doc and "next_offset" not in doc
    assert doc["result"]["rows"] == fake_json_rows(fake, eid)
    assert len(doc["result"]["rows"]) == 5000
    assert doc["result"]["metadata"]["row_count"] == 5000


def test_json_keeps_big_integers_exact(mnt, fake):
    eid = execute(mnt, 1007)
    text = read(mnt.p("executions", eid, "results.json"))
    assert b"2985646787349243786078" in text
    assert json_rows(fake, json.loads(text)) == fake_json_rows(fake, eid)
    assert read(mnt.p("executions", eid, "results.csv")) == fake_csv(fake, eid)


def test_ordinary_tools_agree(mnt, fake, tmp_path):
    eid = execute(mnt, 1005)
    src = mnt.p("executions", eid, "results.csv")
    read(src)  # the run has ended
    want = fake_csv(fake, eid)
    subprocess.run(["cp", src, str(tmp_path / "copy.csv")], check=True, timeout=30)
    assert (tmp_path / "copy.csv").read_bytes() == want
    head = subprocess.run(["head", "-c", "100", src], capture_output=True, timeout=30).stdout
    assert head == want[:100]
    grep = subprocess.run(["grep", "-c", "name_4999", src], capture_output=True, timeout=30)
    assert grep.stdout.strip() == b"1"
    assert int(subprocess.run(["wc", "-c", src], capture_output=True, text=True).stdout.split()[0]) == len(want)
    tail = subprocess.run(["tail", "-c", "50", src], capture_output=True, timeout=30).stdout
    assert tail == want[-50:]


def test_one_download_for_many_readers(mnt, fake):
    eid = execute(mnt, 1005)
    results = []

    def reader():
        results.append(read(mnt.p("executions", eid, "results.csv")))

    threads = [threading.Thread(target=reader) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    fake_log = requests_for(fake, "results", eid)
    want = fake_csv(fake, eid)
    assert len(results) == 20 and all(r == want for r in results)
    # execfs fetched the result exactly once (its first page, for dune)
    ours = [e for e in fake_log if "offset" not in e["query"]]
    assert len(ours) == 1


def test_size_zero_until_complete_then_exact(mnt, fake):
    eid = execute(mnt, 1002)  # slow
    path = mnt.p("executions", eid, "results.csv")
    assert os.stat(path).st_size == 0
    # tools size their reads by st_blksize: big reads, few round trips
    assert os.stat(path).st_blksize >= 128 * 1024
    data = read(path)
    assert data and os.stat(path).st_size == len(data)
    # complete files are served from the local copy: no further request
    fake.reset()
    assert read(path) == data
    assert fake.log() == []


@pytest.mark.backends("dune")  # Redash has no partial results
def test_partial_result_is_served_with_status_partial(mnt, fake):
    eid = execute(mnt, 1006)
    data = read(mnt.p("executions", eid, "results.csv"))
    assert data == fake_csv(fake, eid)
    assert read(mnt.p("executions", eid, "status"), "r") == "partial\n"
    doc = json.loads(read(mnt.p("executions", eid, "results.json")))
    assert doc["state"] == "QUERY_STATE_COMPLETED_PARTIAL"


def test_cache_files_are_complete_and_atomic(mnt, fake):
    eid = execute(mnt, 1005)
    data = read(mnt.p("executions", eid, "results.csv"))
    # readers get EOF once every byte is written; the fsync and rename follow
    results_dir = os.path.join(mnt.cache, "results")
    results = wait_for(lambda: f"{eid}.csv" in os.listdir(results_dir) and os.listdir(results_dir))
    assert not [n for n in results if n.endswith(".part")]
    with open(os.path.join(mnt.cache, "results", f"{eid}.csv"), "rb") as f:
        assert f.read() == data


def test_results_survive_remount_without_requests(mounts, fake):
    m = mounts()
    eid = execute(m, 1001)
    data = read(m.p("executions", eid, "results.csv"))
    m.stop()
    m2 = mounts(name="mnt2", cache_dir=m.cache)
    fake.reset()
    assert read(m2.p("executions", eid, "results.csv")) == data
    assert os.stat(m2.p("executions", eid, "results.csv")).st_size == len(data)
    assert read(m2.p("executions", eid, "status"), "r") == "success\n"
    assert fake.log() == []


def test_latest_csv_and_json(mnt, fake):
    data = read(mnt.p("queries", "1005", "latest.csv"))
    assert data == fake_latest_csv(fake, 1005)
    doc = json.loads(read(mnt.p("queries", "1005", "latest.json")))
    assert len(json_rows(fake, doc)) == 5000
    assert "1005" in os.listdir(mnt.p("queries"))


def test_latest_reused_within_max_age(mnt, fake):
    read(mnt.p("queries", "1001", "latest.csv"))
    fake.reset()
    for _ in range(3):
        read(mnt.p("queries", "1001", "latest.csv"))
    assert fake.log() == []


def test_latest_revalidated_cheaply_after_max_age(mounts, fake):
    m = mounts(options=["max_age=0"])
    first = read(m.p("queries", "1001", "latest.csv"))
    fake.reset()
    assert read(m.p("queries", "1001", "latest.csv")) == first
    assert fake.log() == requests_for(fake, "latest", 1001) and len(fake.log()) == 1
    if kind_of(fake) == "dune":
        assert fake.log()[0]["query"] == "limit=1&allow_partial_results=true"  # one row
    # a new run finishes: the next read revalidates and downloads the new result
    eid = execute(m, 1001)
    new = read(m.p("executions", eid, "results.csv"))
    fake.reset()
    data = read(m.p("queries", "1001", "latest.csv"))
    assert not [e for e in fake.log() if e["path"].endswith((".csv", "/results/csv"))]  # cached
    assert data == new == fake_latest_csv(fake, 1001) and data != first


def test_open_latest_is_a_snapshot(mounts, fake):
    m = mounts(options=["max_age=0"])
    path = m.p("queries", "1005", "latest.csv")
    f = open(path, "rb")
    start = f.read(100)
    want_old = fake_latest_csv(fake, 1005)
    eid = execute(m, 1005)
    new = read(m.p("executions", eid, "results.csv"))
    assert new != want_old  # the runs' results differ
    assert read(path) == new == fake_latest_csv(fake, 1005)  # a new open: the new result
    rest = f.read()
    f.close()
    assert start + rest == want_old  # the old open: its own snapshot, whole


def test_cached_latest_is_a_snapshot_too(mounts, fake):
    """A complete latest.* is read through the page cache; another result behind
    the same name never mixes into it, nor it into the other."""
    m = mounts(options=["max_age=0"])
    path = m.p("queries", "1005", "latest.csv")
    want_old = fake_latest_csv(fake, 1005)
    assert read(path) == want_old  # downloaded: complete from now on
    assert read(path) == want_old  # from the page cache
    f = open(path, "rb")
    start = f.read(100)
    eid = execute(m, 1005)
    new = read(m.p("executions", eid, "results.csv"))
    assert new != want_old  # same length: only the open can tell the kernel
    # the older snapshot is open: its size is the name's, the new one is read aside
    assert os.stat(path).st_size == len(want_old)
    assert read(path) == new == fake_latest_csv(fake, 1005)
    assert os.fstat(f.fileno()).st_size == len(want_old)
    rest = f.read()
    f.close()
    assert start + rest == want_old
    # closed: the name moves on, and its cached pages with it
    for _ in range(2):
        assert read(path) == new
    assert os.stat(path).st_size == len(new)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mem:
        assert mem[:] == new


def test_latest_never_starts_a_run(mnt, fake):
    for q in ("1001", "1005", "1007"):
        try:
            read(mnt.p("queries", q, "latest.csv"))
        except OSError:
            pass
    assert sum(fake.executions().values()) == 0
    assert not [e for e in fake.log() if e["method"] == "POST"]


def test_status_files(mnt, fake):
    eid = execute(mnt, 1001)
    wait_for(lambda: read(mnt.p("executions", eid, "status"), "r") == "success\n")
    doc = json.loads(read(mnt.p("executions", eid, "status.json")))
    if kind_of(fake) == "redash":
        assert doc["job"]["status"] == 3 and doc["job"]["id"] == eid
        assert doc["job"]["query_result_id"] == fake.result_id(eid)
    else:
        assert doc["state"] == "QUERY_STATE_COMPLETED" and doc["execution_id"] == eid
    assert read(mnt.p("executions", eid, "error"), "r") == ""


def test_status_json_of_a_latest_run(mnt, fake):
    read(mnt.p("queries", "1001", "latest.csv"))
    eid = os.path.basename(next(iter(os.listdir(mnt.p("executions")))))
    doc = json.loads(read(mnt.p("executions", eid, "status.json")))
    if kind_of(fake) == "redash":  # a result, not a job: no status document to show
        assert eid == f"result-{fake.latest_result_id(1001)}"
        assert doc == {"query_result_id": fake.latest_result_id(1001)}
    else:
        assert doc["execution_id"] == eid and doc["state"] == "QUERY_STATE_COMPLETED"
    assert read(mnt.p("executions", eid, "status"), "r") == "success\n"
    assert os.readlink(mnt.p("executions", eid, "query")) == "../../queries/1001"


@pytest.mark.backends("dune")
def test_readers_served_while_later_pages_are_still_coming(mnt, fake):
    eid = execute(mnt, 1005)
    open(mnt.p("executions", eid, "status")).read()
    fake.add_fault(match="offset=2000", action="delay", seconds=3)
    head = subprocess.run(["head", "-c", "100", mnt.p("executions", eid, "stream", "results.csv")],
                          capture_output=True, timeout=30)
    # head had its bytes while page 3 was still delayed: page 4 not asked for yet
    assert not [e for e in fake.log() if "offset=3000" in e["query"]]
    assert len(head.stdout) == 100
    whole = read(mnt.p("executions", eid, "results.csv"))
    assert whole[:100] == head.stdout and whole == fake_csv(fake, eid)


@pytest.mark.backends("dune")  # redash has no pages
def test_next_page_asked_for_while_a_page_streams(mnt, fake):
    eid = execute(mnt, 1005)
    fake.reset()
    fake.add_fault(match="offset=1000", action="stall_body", seconds=2)
    data = read(mnt.p("executions", eid, "results.csv"))
    asked = [(e["query"], e["time"]) for e in requests_to(fake, f"/execution/{eid}/results/csv")]
    assert data == fake_csv(fake, eid)
    second = next(t for q, t in asked if "offset=1000" in q)
    third = next(t for q, t in asked if "offset=2000" in q)
    assert third - second < 1.0  # during the second page's stall, not after it
    assert len(asked) == len(set(q for q, _ in asked)) == 5  # each page once


def test_complete_result_can_be_mmapped(mnt, fake):
    import mmap
    eid = execute(mnt, 1005)
    data = read(mnt.p("executions", eid, "results.csv"))
    with open(mnt.p("executions", eid, "results.csv"), "rb") as f:
        with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
            assert mm[:] == data


def cached_results(m):
    d = os.path.join(m.cache, "results")
    sizes = {}
    for n in os.listdir(d):
        try:
            sizes[n] = os.path.getsize(os.path.join(d, n))
        except FileNotFoundError:
            pass  # evicted while listed
    return sizes


def test_cache_size_evicts_least_recently_used_never_open_files(mounts, fake):
    m = mounts(options=["cache_size=1K"])  # each result 600 to 1000 bytes
    a, b, c = (execute(m, 1003, f"days={days}") for days in (20, 21, 22))  # distinct runs
    held = open(m.p("executions", a, "results.csv"), "rb")  # a stays open throughout
    data_a = held.read()
    data_b = read(m.p("executions", b, "results.csv"))
    data_c = read(m.p("executions", c, "results.csv"))
    assert f"{a}.csv" in cached_results(m)  # open: never evicted
    wait_for(lambda: f"{b}.csv" not in cached_results(m))  # least recently used of the closed
    assert f"{a}.csv" in cached_results(m)
    held.close()  # the kernel's release comes a moment later
    wait_for(lambda: sum(cached_results(m).values()) <= 1024)
    # an evicted result is fetched again, byte for byte
    fake.reset()
    assert read(m.p("executions", b, "results.csv")) == data_b
    assert requests_for(fake, "results", b)
    assert data_a == fake_csv(fake, a) and data_c == fake_csv(fake, c)
    wait_for(lambda: sum(cached_results(m).values()) <= 1024)


def test_cache_size_applies_at_mount(mounts, fake):
    m = mounts()
    for days in (20, 21, 22):
        read(m.p("executions", execute(m, 1003, f"days={days}"), "results.csv"))
    m.stop()
    m2 = mounts(name="mnt2", cache_dir=m.cache, options=["cache_size=1K"])
    assert sum(cached_results(m2).values()) <= 1024
    assert len(os.listdir(m2.p("executions"))) == 3  # the index stays whole
