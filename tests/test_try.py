"""mount-examples/try.sh: try execfs by hand with no key (README, "Try it by hand").

It starts the bundled local API, mounts it in the foreground, prints the sample
queries and what to try, and a Ctrl-C (SIGINT to its process group, as a
terminal sends it) unmounts and removes what it made.
"""
import os
import pathlib
import signal
import subprocess
import time

import pytest

from conftest import EXECFS, wait_for

TRY = pathlib.Path(__file__).resolve().parent.parent / "mount-examples" / "try.sh"


@pytest.mark.parametrize("kind", ["dune", "redash"])
def test_try_mounts_says_what_to_try_and_ctrl_c_cleans_up(kind):
    proc = subprocess.Popen(["bash", str(TRY), kind], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "EXECFS_BIN": EXECFS}, start_new_session=True)
    lines, mnt = [], None
    try:
        deadline = time.monotonic() + 60
        while mnt is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Mount point: "):
                mnt = line.split(": ", 1)[1].strip()
        assert mnt, "".join(lines)
        wait_for(lambda: os.path.ismount(mnt), timeout=20)
        text = "".join(lines)
        for words in ("1001  fast", "1002  slow", "1003  parameters", "1004  fails", "1005  big",
                      "1006  partial", "1007  never run"):
            assert words in text
        with open(os.path.join(mnt, "queries", "1001", "latest.csv")) as f:
            assert f.readline().startswith("n,")
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if mnt and os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
    assert proc.returncode == 0, out
    assert "unmounted; removed" in out
    assert not os.path.exists(os.path.dirname(mnt))
