"""The tree (README, "The tree"): names, listings, persistence, id validation."""
import datetime
import errno
import json
import os
import subprocess
import time

import pytest

from conftest import execute, kind_of, requests_for, run_elsewhere, wait_for


def test_root_listing(mnt):
    assert sorted(os.listdir(mnt.path)) == ["executions", "queries"]


def test_query_lookup_makes_no_request(mnt, fake):
    fake.reset()
    st = os.stat(mnt.p("queries", "1215383"))
    assert st.st_mode & 0o040000
    assert sorted(os.listdir(mnt.p("queries", "1215383"))) == [
        "error", "execute", "latest.csv", "latest.json", "latest.ndjson", "stream"]
    assert sorted(os.listdir(mnt.p("queries", "1215383", "stream"))) == [
        "latest.csv", "latest.json", "latest.ndjson"]
    os.stat(mnt.p("queries", "1215383", "latest.csv"))
    assert fake.log() == []


@pytest.mark.parametrize("name", ["..x", "%2f", "x" * 1000, "1\x01", "é", "?api_key=x",
                                  "12ab", "-5", "0123", "1" * 40])
def test_invalid_query_ids(mnt, fake, name):
    fake.reset()
    with pytest.raises(OSError) as e:
        os.stat(mnt.p("queries", name))
    assert e.value.errno in (errno.ENOENT, errno.ENAMETOOLONG)
    assert fake.log() == []


@pytest.mark.parametrize("name", ["%2f", "a" * 65, "bad.id", "x\x7f", "ü", "?api_key=x", "a b"])
def test_invalid_execution_ids(mnt, fake, name):
    fake.reset()
    with pytest.raises(OSError) as e:
        os.stat(mnt.p("executions", name))
    assert e.value.errno in (errno.ENOENT, errno.ENAMETOOLONG)
    assert fake.log() == []


def test_unknown_execution_is_enoent_and_cached(mnt, fake):
    fake.reset()
    for _ in range(3):
        with pytest.raises(FileNotFoundError):
            os.stat(mnt.p("executions", "01NOSUCHEXECUTION0000000000"))
    # dune: 404; redash: 500, its answer for a job it does not know
    assert len(requests_for(fake, "status", "01NOSUCHEXECUTION0000000000")) == 1


def test_execution_made_elsewhere_is_found_by_status(mnt, fake):
    # a run started outside this mount (another client): looked up by id
    eid = run_elsewhere(fake, 1001)
    fake.reset()
    names = sorted(os.listdir(mnt.p("executions", eid)))
    assert len(requests_for(fake, "status", eid)) == 1
    assert eid in os.listdir(mnt.p("executions"))
    if kind_of(fake) == "redash":  # a Redash job does not say which query it runs
        assert names == ["cancel", "error", "results.csv", "results.json", "results.ndjson", "status",
                         "status.json", "stream"]
    else:
        assert names == ["cancel", "error", "query", "results.csv", "results.json", "results.ndjson", "status",
                         "status.json", "stream"]
        assert os.readlink(mnt.p("executions", eid, "query")) == "../../queries/1001"


def test_listings_persist_across_remount(mounts, fake):
    m = mounts()
    eid = execute(m, 1001)
    open(m.p("queries", "1003", "latest.csv"), "rb").read()
    assert sorted(os.listdir(m.p("queries"))) == ["1001", "1003"]
    assert eid in os.listdir(m.p("executions"))
    m.stop()
    m2 = mounts(name="mnt2", cache_dir=m.cache)
    fake.reset()
    assert sorted(os.listdir(m2.p("queries"))) == ["1001", "1003"]
    assert eid in os.listdir(m2.p("executions"))
    assert os.readlink(m2.p("queries", "1001", "last")) == f"../../executions/{eid}"
    assert fake.log() == []


def test_modes_and_types(mnt):
    q = mnt.p("queries", "1001")
    eid = execute(mnt, 1001)
    e = mnt.p("executions", eid)
    assert oct(os.stat(q + "/execute").st_mode & 0o777) == "0o644"
    assert oct(os.stat(q + "/latest.csv").st_mode & 0o777) == "0o444"
    assert os.path.islink(q + "/last") and os.path.islink(e + "/query")
    assert oct(os.stat(e + "/cancel").st_mode & 0o777) == "0o200"
    assert os.stat(e + "/status").st_uid == os.getuid()


def test_namespace_cannot_change(mnt):
    q = mnt.p("queries", "1001")
    os.stat(q)
    cases = [
        lambda: os.mkdir(mnt.p("queries", "1001", "x")),
        lambda: os.mkdir(mnt.p("newdir")),
        lambda: os.unlink(q + "/latest.csv"),
        lambda: os.rmdir(q),
        lambda: os.rename(q + "/latest.csv", q + "/x.csv"),
        lambda: os.symlink("/etc/passwd", q + "/link"),
        lambda: open(q + "/newfile", "w"),
        lambda: os.chmod(q + "/latest.csv", 0o777),
        lambda: os.truncate(q + "/latest.csv", 0),
        lambda: open(q + "/latest.csv", "w"),
    ]
    for case in cases:
        with pytest.raises(OSError) as e:
            case()
        assert e.value.errno in (errno.EACCES, errno.EPERM, errno.EROFS), case
    assert sorted(os.listdir(q)) == ["error", "execute", "latest.csv", "latest.json", "latest.ndjson",
                                     "stream"]


def test_ls_and_find_work(mnt):
    execute(mnt, 1001)
    out = subprocess.run(["ls", "-lR", mnt.path], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(["find", mnt.p("queries")], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0 and "/queries/1001/execute" in out.stdout


def test_large_listing_over_many_readdir_calls(mnt, fake):
    # distinct parameters: Redash would hand back the job already running the same text
    eids = {execute(mnt, 1003, f"days={days}") for days in range(1, 121)}
    listed = set(os.listdir(mnt.p("executions")))
    assert eids <= listed and len(listed) == 120
    out = subprocess.run(["ls", "-1", mnt.p("executions")], capture_output=True, text=True, timeout=30)
    assert set(out.stdout.split()) == listed


def test_df_shows_the_cache(mounts, fake):
    m = mounts(options=["cache_size=100M"])
    st = os.statvfs(m.path)
    assert st.f_blocks * st.f_frsize == 100 * 1024 * 1024
    assert st.f_bfree == st.f_blocks  # nothing cached yet
    eid = execute(m, 1005)
    with open(m.p("executions", eid, "results.csv"), "rb") as f:
        size = len(f.read())
    used = wait_for(lambda: (st := os.statvfs(m.path)).f_blocks - st.f_bfree)
    assert used * st.f_frsize >= size
    df = subprocess.run(["df", "-P", m.path], capture_output=True, text=True, check=True)
    assert df.stdout.splitlines()[1].split()[0].startswith(kind_of(fake) + ":")


def test_ls_l_shows_sizes_without_requests(mnt, fake):
    data = open(mnt.p("queries", "1001", "latest.csv"), "rb").read()
    fake.reset()
    out = subprocess.run(["ls", "-l", mnt.p("queries", "1001")], capture_output=True, text=True,
                         check=True).stdout
    sizes = {line.split()[-1]: int(line.split()[4]) for line in out.splitlines()[1:]}
    assert sizes["latest.csv"] == len(data)
    assert fake.log() == []


def test_result_files_are_dated_by_the_end_of_their_run(mounts, fake):
    """results.* and latest.* carry their run's end as mtime (dune: the API's
    execution_ended_at; redash, which gives none: when the mount learned it),
    so make and rsync see a newer result as newer; it survives a remount."""
    m = mounts()
    t0 = int(time.time())
    eid = execute(m, 1001)
    with open(m.p("executions", eid, "results.csv"), "rb") as f:
        f.read()
    t1 = time.time()
    mtime = os.stat(m.p("executions", eid, "results.csv")).st_mtime
    assert t0 <= mtime <= t1
    if kind_of(fake) == "dune":
        status = json.loads(open(m.p("executions", eid, "status.json")).read())
        ended = datetime.datetime.fromisoformat(status["execution_ended_at"].replace("Z", "+00:00"))
        assert mtime == int(ended.timestamp())
    assert os.stat(m.p("executions", eid, "results.json")).st_mtime == mtime
    assert os.stat(m.p("executions", eid, "status")).st_mtime <= mtime  # the mount's start
    time.sleep(1.1)
    eid2 = execute(m, 1001)
    with open(m.p("executions", eid2, "results.csv"), "rb") as f:
        f.read()
    mtime2 = os.stat(m.p("executions", eid2, "results.csv")).st_mtime
    assert mtime2 > mtime
    with open(m.p("queries", "1001", "latest.csv"), "rb") as f:
        f.read()
    assert os.stat(m.p("queries", "1001", "latest.csv")).st_mtime == mtime2
    m.stop()
    m2 = mounts(name="mnt2", cache_dir=m.cache)
    assert os.stat(m2.p("executions", eid, "results.csv")).st_mtime == mtime
