#!/usr/bin/env python3
"""Benchmark: what parked readers cost the rest of the mount.

Mounts execfs over the local fake Dune API, parks N readers on a run that is
still going, and measures `ls -l` of a query directory, `stat` and a small read
of another file, against the same measured with no reader parked (the baseline,
in the same run). Also the daemon's threads and the status requests of the run.

    /usr/bin/python3 bench/parked_readers.py [--readers 50] [--repeat 20]
"""
import argparse
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
from conftest import Mount, execute, new_key, requests_to  # noqa: E402
from fake_dune import FakeDune  # noqa: E402

SLOW = {"id": 3001, "columns": [{"name": "n", "type": "integer"}], "generate_rows": 3,
        "pending_seconds": 1, "run_seconds": 60, "prior_runs": 0}


def metadata_ms(m, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(["ls", "-l", m.p("queries", "1001")], check=True, capture_output=True)
        os.stat(m.p("queries", "1001", "latest.csv"))
        with open(m.p("queries", "1001", "error")) as f:
            f.read()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readers", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()

    fake = FakeDune(key=new_key(), time_scale=1.0)
    fake.add_query(SLOW)
    fake.start()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="execfs-bench-"))
    m = Mount(fake, tmp).start()
    cats = []
    try:
        open(m.p("queries", "1001", "latest.csv"), "rb").read()  # warm
        baseline = metadata_ms(m, args.repeat)
        threads_idle = len(os.listdir(f"/proc/{m.proc.pid}/task"))
        eid = execute(m, SLOW["id"])
        path = m.p("executions", eid, "results.csv")
        cats = [subprocess.Popen(["cat", path], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL) for _ in range(args.readers)]
        time.sleep(1.0)
        parked = metadata_ms(m, args.repeat)
        threads_parked = len(os.listdir(f"/proc/{m.proc.pid}/task"))
        cpu0 = sum(int(x) for x in open(f"/proc/{m.proc.pid}/stat").read().split()[13:15])
        time.sleep(5)
        cpu1 = sum(int(x) for x in open(f"/proc/{m.proc.pid}/stat").read().split()[13:15])
        t0 = time.perf_counter()
        for c in cats:
            c.send_signal(signal.SIGINT)
        for c in cats:
            c.wait(10)
        sigint_ms = (time.perf_counter() - t0) * 1000
        polls = len(requests_to(fake, f"/execution/{eid}/status"))
        elapsed = time.time() - min(e["time"] for e in requests_to(fake, f"/execution/{eid}"))
    finally:
        for c in cats:
            if c.poll() is None:
                c.kill()
        m.stop()
        fake.stop()

    rows = [
        ("ls -l + stat + read, no reader parked (ms, median)", f"{baseline:.2f}", "baseline", ""),
        (f"same with {args.readers} readers parked (ms, median)", f"{parked:.2f}", "< 1000",
         f"{parked / baseline:.2f} x baseline"),
        ("daemon threads idle / parked", f"{threads_idle} / {threads_parked}", "<= 16", ""),
        ("daemon CPU while parked (ticks in 5 s)", str(cpu1 - cpu0), "near 0", ""),
        (f"SIGINT to all {args.readers} parked readers until all exited (ms)", f"{sigint_ms:.1f}",
         "< 1000", ""),
        (f"status requests for the run in {elapsed:.1f} s", str(polls), "independent of readers", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>10}  {'target':<24}  ratio")
    for name, value, target, ratio in rows:
        print(f"{name:<{width}}  {value:>10}  {target:<24}  {ratio}")


if __name__ == "__main__":
    main()
