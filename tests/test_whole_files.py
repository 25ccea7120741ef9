"""Every tool sees a regular file: results.* and latest.* open whole (the open
waits until the result is on local disk, then the file has its exact size and
is read through the page cache), stream/ serves the same bytes as they
arrive, and metadata never shows a result newer than it is.

Each tool runs on a result the mount has not downloaded yet (cold), then on
the same file again (warm), and its output is compared with the same tool's
output on a copy of the API's own bytes (fake_csv, fake_latest_csv): nothing
expected is written down here.
"""
import mmap
import os
import shutil
import subprocess
import time

import pandas
import pytest

from conftest import (execute, fake_csv, fake_latest_csv, need, requests_for, stall_download,
                      wait_ended, wait_for)

BIG = 1005  # multi-page: 5000 rows


def sh(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, timeout=120, **kw).stdout


@pytest.fixture(scope="session")
def duckdb_dir(tmp_path_factory):
    """A folder holding the npm package @duckdb/node-api (its native binary
    comes inside the package); the tests that need it skip, saying why, when
    npm cannot install it."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm is not installed (tests/install-deps.sh installs it): no DuckDB")
    d = tmp_path_factory.mktemp("duckdb")
    out = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent",
                          "@duckdb/node-api"], cwd=d, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        pytest.skip(f"npm could not install @duckdb/node-api: {out.stderr.strip()[-300:]}")
    (d / "query.mjs").write_text(
        "import { DuckDBInstance } from '@duckdb/node-api';\n"
        "const db = await DuckDBInstance.create(':memory:');\n"
        "const con = await db.connect();\n"
        "const r = await con.runAndReadAll(process.argv[2]);\n"
        "console.log(JSON.stringify(r.getRowObjectsJson()));\n")
    # the package installed, but its native part must run on this machine's node
    smoke = subprocess.run(["node", str(d / "query.mjs"), "SELECT 42 AS n"], cwd=d,
                           capture_output=True, text=True, timeout=120)
    if smoke.returncode != 0 or '"n":42' not in smoke.stdout.replace(" ", ""):
        pytest.skip(f"@duckdb/node-api does not run on this node: {smoke.stderr.strip()[-300:]}")
    return d


# ---- the tools: each takes a path (and a scratch folder), returns its output --

def t_cat(path, tmp):
    return sh(["cat", path])


def t_cp(path, tmp):
    sh(["cp", path, str(tmp / "cp.out")])
    return (tmp / "cp.out").read_bytes()


def t_rsync(path, tmp):
    need("rsync")
    sh(["rsync", path, str(tmp / "rsync.out")])
    return (tmp / "rsync.out").read_bytes()


def t_rsync_a(path, tmp):
    need("rsync")
    sh(["rsync", "-a", path, str(tmp / "rsync-a.out")])
    return (tmp / "rsync-a.out").read_bytes()


def t_shutil_copyfile(path, tmp):
    shutil.copyfile(path, tmp / "copyfile.out")
    return (tmp / "copyfile.out").read_bytes()


def t_shutil_copy2(path, tmp):
    shutil.copy2(path, tmp / "copy2.out")
    return (tmp / "copy2.out").read_bytes()


def t_sort(path, tmp):
    return sh(["sort", path], env={**os.environ, "LC_ALL": "C"})


def t_mmap(path, tmp):
    with open(path, "rb") as f:
        with mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ) as mm:
            return bytes(mm[:])


def t_pandas_memory_map(path, tmp):
    return pandas.read_csv(path, memory_map=True).to_csv(index=False).encode()


def t_sqlite3(path, tmp):
    need("sqlite3")
    db = tmp / f"sqlite-{time.monotonic_ns()}.db"
    return sh(["sqlite3", str(db), ".import --csv " + path + " t", "SELECT count(*) FROM t;"])


def t_zstd(path, tmp):
    need("zstd")
    out = tmp / f"z-{time.monotonic_ns()}.zst"
    sh(["zstd", "-q", "-f", path, "-o", str(out)])
    return sh(["zstd", "-dc", str(out)])


def t_split(path, tmp):
    d = tmp / f"split-{time.monotonic_ns()}"
    d.mkdir()
    sh(["split", "-n", "l/4", path, str(d / "part.")])
    return b"".join((d / n).read_bytes() for n in sorted(os.listdir(d)))


def t_ssconvert(path, tmp):
    """gnumeric's converter."""
    if shutil.which("ssconvert") is None:
        pytest.skip("ssconvert is not installed: gnumeric would add 263 packages to the test "
                    "machine (apt-get install gnumeric to run this)")
    out = tmp / f"ss-{time.monotonic_ns()}.csv"
    sh(["ssconvert", "-T", "Gnumeric_stf:stf_csv", path, str(out)])
    return out.read_bytes()


TOOLS = [t_cat, t_cp, t_rsync, t_rsync_a, t_shutil_copyfile, t_shutil_copy2, t_sort, t_mmap,
         t_pandas_memory_map, t_sqlite3, t_zstd, t_split, t_ssconvert]


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.__name__[2:])
def test_tools_on_results_cold_and_warm(fake, mnt, tmp_path, tool):
    eid = execute(mnt, BIG)
    path = mnt.p("executions", eid, "results.csv")
    cold = tool(path, tmp_path)  # first use, before any read: the open waits
    # one download (dune: one first page), whatever the tool
    assert len([e for e in requests_for(fake, "results", eid) if "offset" not in e["query"]]) == 1
    truth = tmp_path / "truth.csv"
    truth.write_bytes(fake_csv(fake, eid))
    want = tool(str(truth), tmp_path)
    assert cold == want
    fake.reset()
    assert tool(path, tmp_path) == want  # warm: from the cache, no request
    assert requests_for(fake, "results", eid) == []
    assert os.stat(path).st_size == truth.stat().st_size


@pytest.mark.parametrize("tool", [t_cp, t_rsync, t_rsync_a, t_shutil_copyfile, t_mmap, t_zstd, t_split],
                         ids=lambda t: t.__name__[2:])
def test_tools_on_latest_cold(fake, mnt, tmp_path, tool):
    path = mnt.p("queries", "1001", "latest.csv")
    cold = tool(path, tmp_path)
    truth = tmp_path / "truth.csv"
    truth.write_bytes(fake_latest_csv(fake, 1001))
    assert cold == tool(str(truth), tmp_path)
    assert os.stat(path).st_size == truth.stat().st_size


def test_cmp_says_same_first_time(fake, mnt, tmp_path):
    eid = execute(mnt, BIG)
    wait_ended(mnt, eid)
    truth = tmp_path / "truth.csv"
    truth.write_bytes(fake_csv(fake, eid))
    path = mnt.p("executions", eid, "results.csv")
    assert subprocess.run(["cmp", "-s", path, str(truth)]).returncode == 0


def test_duckdb_reads_csv_and_ndjson_cold(fake, mnt, tmp_path, duckdb_dir):
    def duck(sql):
        return sh(["node", str(duckdb_dir / "query.mjs"), sql], cwd=duckdb_dir)

    eid = execute(mnt, BIG)
    wait_ended(mnt, eid)
    truth = tmp_path / "truth.csv"
    truth.write_bytes(fake_csv(fake, eid))
    csv_sql = "SELECT count(*) AS n, count(DISTINCT {c}) AS d FROM read_csv('{p}')"
    first_col = pandas.read_csv(truth).columns[0]
    q = csv_sql.format(c=f'"{first_col}"', p=mnt.p("executions", eid, "results.csv"))
    got = duck(q)
    assert got == duck(csv_sql.format(c=f'"{first_col}"', p=str(truth)))
    assert b'"n":"5000"' in got
    eid2 = execute(mnt, BIG)  # a second run, its NDJSON never read
    nd = duck(f"SELECT count(*) AS n FROM read_json('{mnt.p('executions', eid2, 'results.ndjson')}',"
              " format='newline_delimited')")
    assert b'"n":"5000"' in nd


def test_mmap_of_a_descriptor_opened_during_the_run(fake, mnt):
    eid = execute(mnt, 1002)  # slow: the open comes while the run goes on
    with open(mnt.p("executions", eid, "results.csv"), "rb") as f:
        with mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ) as mm:
            assert bytes(mm[:]) == fake_csv(fake, eid)


def test_lstat_of_a_complete_result_and_after_remount(fake, mounts, tmp_path):
    m = mounts()
    eid = execute(m, BIG)
    path = m.p("executions", eid, "results.csv")
    data = open(path, "rb").read()
    # tools that decide from lstat alone (tar, find, du, [ -s ], getsize)
    assert os.path.getsize(path) == len(data)
    assert sh(["find", path, "-size", f"{len(data)}c"]).strip() == path.encode()
    assert subprocess.run(["test", "-s", path]).returncode == 0
    assert int(sh(["du", "-b", path]).split()[0]) == len(data)
    sh(["tar", "cf", str(tmp_path / "r.tar"), "-C", os.path.dirname(path), "results.csv"])
    out = tmp_path / "out"
    out.mkdir()
    sh(["tar", "xf", str(tmp_path / "r.tar"), "-C", str(out)])
    assert (out / "results.csv").read_bytes() == data
    assert b"text" in sh(["file", "-b", path]).lower()
    m.stop()
    m2 = mounts(name="mnt2", cache_dir=m.cache)
    assert os.path.getsize(m2.p("executions", eid, "results.csv")) == len(data)


def test_mtime_before_the_end_is_the_epoch_then_the_end(fake, mnt, tmp_path):
    eid = execute(mnt, 1002)  # slow
    path = mnt.p("executions", eid, "results.csv")
    st = os.stat(path)
    assert st.st_size == 0 and st.st_mtime == 0  # never newer than it is
    data = open(path, "rb").read()
    st = os.stat(path)
    assert st.st_size == len(data) and abs(st.st_mtime - time.time()) < 120
    # rsync -au repairs what an earlier copy missed
    dst = tmp_path / "copy.csv"
    dst.write_bytes(b"")
    os.utime(dst, (1, 1))
    need("rsync")
    sh(["rsync", "-au", path, str(dst)])
    assert dst.read_bytes() == data


def test_ctrl_c_ends_a_waiting_open_the_download_goes_on(fake, mnt):
    eid = execute(mnt, 1002)  # slow
    path = mnt.p("executions", eid, "results.csv")
    waiting = subprocess.Popen(["cat", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)
    waiting.send_signal(2)
    assert waiting.wait(10) != 0
    assert open(path, "rb").read() == fake_csv(fake, eid)


# ---- stream/: the same bytes as they arrive ---------------------------------

def test_stream_names_serve_bytes_before_the_end(fake, mnt):
    eid = execute(mnt, BIG)
    wait_ended(mnt, eid)
    stall_download(fake, 3)
    stream = mnt.p("executions", eid, "stream", "results.csv")
    assert os.stat(stream).st_size == 0
    head = sh(["head", "-c", "100", stream])
    # head had its bytes while the rest was held: nothing committed yet
    assert not os.path.exists(os.path.join(mnt.cache, "results", f"{eid}.csv"))
    truth = fake_csv(fake, eid)
    assert head == truth[:100]
    assert open(mnt.p("executions", eid, "results.csv"), "rb").read() == truth


def test_stream_names_with_tail_and_less(fake, mnt):
    eid = execute(mnt, BIG)
    stream = mnt.p("executions", eid, "stream", "results.csv")
    wait_ended(mnt, eid)
    truth = fake_csv(fake, eid)
    assert sh(["tail", "-c", "200", stream]) == truth[-200:]
    need("less")
    assert sh(["less", stream], stdin=subprocess.DEVNULL) == truth
    latest = mnt.p("queries", "1001", "stream", "latest.csv")
    assert sh(["cat", latest]) == fake_latest_csv(fake, 1001)
    assert sorted(os.listdir(mnt.p("executions", eid, "stream"))) == \
        ["results.csv", "results.json", "results.ndjson"]
    assert sorted(os.listdir(mnt.p("queries", "1001", "stream"))) == \
        ["latest.csv", "latest.json", "latest.ndjson"]


# ---- prefetch ----------------------------------------------------------------

def test_prefetch_downloads_a_run_started_here_once_it_ends(fake, mounts):
    m = mounts(options=["prefetch=csv,ndjson"])
    eid = execute(m, BIG)
    path = m.p("executions", eid, "results.csv")
    wait_for(lambda: os.stat(path).st_size > 0, timeout=30)  # nobody read it
    truth = fake_csv(fake, eid)
    assert os.stat(path).st_size == len(truth)
    fake.reset()
    assert open(path, "rb").read() == truth
    assert requests_for(fake, "results", eid) == []  # served from the cache
    nd = m.p("executions", eid, "results.ndjson")
    wait_for(lambda: os.stat(nd).st_size > 0, timeout=30)
    open(nd, "rb").read()
    assert requests_for(fake, "results", eid, fmt="json") == []


def test_without_prefetch_nothing_is_downloaded_unread(fake, mnt):
    eid = execute(mnt, 1001)
    wait_ended(mnt, eid)
    time.sleep(1)
    assert requests_for(fake, "results", eid) == []
    assert os.stat(mnt.p("executions", eid, "results.csv")).st_size == 0


def test_prefetch_option_is_checked(fake, mounts):
    m = mounts(wait=False, name="bad", options=["prefetch=xlsx"])
    m.proc.wait(10)
    assert m.proc.returncode != 0
    assert "prefetch=xlsx: expected formats among csv, json, ndjson" in m.log()
    # a word after the comma that names no format is no format: refused by name
    m = mounts(wait=False, name="bad2", options=["prefetch=csv,xlsx"])
    m.proc.wait(10)
    assert m.proc.returncode != 0 and "xlsx" in m.log()
    assert not os.path.ismount(m.path)
