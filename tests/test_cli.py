"""The command line and key handling (README, "Using it against the real API")."""
import os
import stat
import subprocess

import pytest

from conftest import EXECFS, Mount, kind_of, new_key


def run(args, env=None, timeout=10):
    e = {k: v for k, v in os.environ.items()
         if k not in ("EXECFS_API_KEY", "DUNE_API_KEY", "REDASH_API_KEY")}
    e.update(env or {})
    return subprocess.run([EXECFS] + args, capture_output=True, text=True, env=e, timeout=timeout)


def test_help_and_version():
    r = run(["--help"])
    assert r.returncode == 0
    assert "SOURCE MOUNTPOINT" in r.stdout and "key_file=PATH" in r.stdout
    r = run(["--version"])
    assert r.returncode == 0 and r.stdout.startswith("execfs ")


def test_bad_option_is_named(tmp_path):
    r = run(["dune:http://127.0.0.1:9", str(tmp_path), "-o", "no_such_option=1"],
            env={"EXECFS_API_KEY": "k"})
    assert r.returncode != 0
    assert "no_such_option" in r.stderr


def test_bad_source_is_named(tmp_path):
    r = run(["oracle:http://x", str(tmp_path)], env={"EXECFS_API_KEY": "k"})
    assert r.returncode != 0 and "oracle" in r.stderr


def test_api_key_option_refused_with_reason(tmp_path):
    key = new_key()
    r = run(["dune:http://127.0.0.1:9", str(tmp_path), "-o", f"api_key={key}"])
    assert r.returncode != 0
    assert "api_key" in r.stderr and "ps" in r.stderr
    assert key not in r.stderr and key not in r.stdout


def test_missing_key_refused(tmp_path):
    r = run(["dune:http://127.0.0.1:9", str(tmp_path)])
    assert r.returncode != 0
    assert "EXECFS_API_KEY" in r.stderr and "DUNE_API_KEY" in r.stderr


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_key_file_readable_by_others_refused(tmp_path, mode):
    key_file = tmp_path / "key"
    key_file.write_text("secret\n")
    os.chmod(key_file, mode)
    r = run(["dune:http://127.0.0.1:9", str(tmp_path), "-o", f"key_file={key_file}"])
    assert r.returncode != 0
    assert "key_file" in r.stderr and "chmod 600" in r.stderr


def test_key_file_used(fake, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(fake.key + "\n")
    os.chmod(key_file, 0o600)
    m = Mount(fake, tmp_path, options=[f"key_file={key_file}"], env={})
    m.start()
    try:
        with open(m.p("queries", "1001", "latest.csv"), "rb") as f:
            assert f.read().startswith(b"n,name,")
    finally:
        m.stop()
    assert all(e["key_ok"] for e in fake.log())


@pytest.mark.parametrize("variable", ["EXECFS_API_KEY", "backend's own"])
def test_key_from_environment(fake, tmp_path, variable):
    if variable != "EXECFS_API_KEY":
        variable = "REDASH_API_KEY" if kind_of(fake) == "redash" else "DUNE_API_KEY"
    m = Mount(fake, tmp_path, env={variable: fake.key})
    m.start()
    try:
        assert open(m.p("queries", "1001", "latest.csv"), "rb").read().startswith(b"n,name,")
    finally:
        m.stop()
    assert fake.log() and all(e["key_ok"] and not e["key_in_url"] for e in fake.log())


def test_execfs_key_wins_over_the_backends_key(fake, tmp_path):
    own = "REDASH_API_KEY" if kind_of(fake) == "redash" else "DUNE_API_KEY"
    m = Mount(fake, tmp_path, env={"EXECFS_API_KEY": fake.key, own: "wrong"})
    m.start()
    try:
        assert open(m.p("queries", "1001", "latest.csv"), "rb").read()
    finally:
        m.stop()


def test_cache_dir_created_private(fake, tmp_path):
    cache = tmp_path / "deep" / "cache"
    m = Mount(fake, tmp_path, cache_dir=str(cache))
    m.start()
    try:
        open(m.p("queries", "1001", "latest.csv"), "rb").read()
    finally:
        m.stop()
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    for dirpath, _, files in os.walk(cache):
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(dirpath, name)).st_mode) == 0o600


def test_redash_needs_a_url_and_names_its_key(tmp_path):
    r = run(["redash", str(tmp_path)], env={"EXECFS_API_KEY": "k"})
    assert r.returncode != 0 and "redash:URL" in r.stderr
    r = run(["redash:http://127.0.0.1:9", str(tmp_path)])
    assert r.returncode != 0
    assert "EXECFS_API_KEY" in r.stderr and "REDASH_API_KEY" in r.stderr


# ---- clear words before mounting (a newcomer's first hour) ---------------------

def unmount(path):
    subprocess.run(["fusermount3", "-uz", str(path)], capture_output=True)


def test_source_and_mountpoint_swapped_says_so(tmp_path):
    r = run([str(tmp_path), "dune"], env={"EXECFS_API_KEY": "k"})
    assert r.returncode != 0
    assert r.stderr == f"execfs: SOURCE comes first, then MOUNTPOINT: execfs [OPTIONS] dune {tmp_path}\n"


def test_a_mountpoint_that_is_not_empty_is_refused_unless_nonempty(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    (mnt / "notes.txt").write_text("mine\n")
    args = ["dune:http://127.0.0.1:9", str(mnt), "-o", f"cache_dir={tmp_path / 'cache'}"]
    r = run(args, env={"EXECFS_API_KEY": "k"})
    assert r.returncode != 0
    assert "is not empty" in r.stderr and "-o nonempty" in r.stderr
    assert not os.path.ismount(mnt)
    try:
        r = run(args[:-1] + [args[-1] + ",nonempty"], env={"EXECFS_API_KEY": "k"})
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(mnt)
    finally:
        unmount(mnt)
    assert (mnt / "notes.txt").read_text() == "mine\n"


def test_a_mountpoint_already_mounted_is_refused_with_what_to_do(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    args = ["dune:http://127.0.0.1:9", str(mnt), "-o", f"cache_dir={tmp_path / 'cache'}"]
    try:
        assert run(args, env={"EXECFS_API_KEY": "k"}).returncode == 0
        r = run(args, env={"EXECFS_API_KEY": "k"})
        assert r.returncode != 0
        assert "is already mounted" in r.stderr and f"fusermount3 -u {mnt}" in r.stderr
    finally:
        unmount(mnt)


def test_an_unknown_option_is_named_with_the_closest_known_one(tmp_path):
    r = run(["dune:http://127.0.0.1:9", str(tmp_path), "-o", "cach_size=1G,alow_other"],
            env={"EXECFS_API_KEY": "k"})
    assert r.returncode != 0
    assert "execfs: unknown option cach_size=1G: did you mean cache_size=?" in r.stderr
    assert "execfs: unknown option alow_other: did you mean allow_other?" in r.stderr


def test_help_puts_execfs_options_first_each_once_and_points_at_the_man_page():
    out = run(["--help"]).stdout
    assert out.index("key_file=PATH") < out.index("FUSE options")
    for option in ("-h, --help", "-V, --version", "-o allow_other", "-o max_threads"):
        assert out.count(option) == 1, option
    assert "man execfs" in out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to set up a private /dev/fuse")
def test_dev_fuse_not_open_to_the_user_says_what_to_do():
    # a /dev/fuse of mode 0600 owned by root, in a mount namespace of its own,
    # and execfs run as nobody
    import shutil
    import tempfile
    if not (shutil.which("unshare") and shutil.which("setpriv")):
        pytest.skip("needs unshare and setpriv (util-linux)")
    work = tempfile.mkdtemp(prefix="execfs-devfuse-")
    try:
        os.chmod(work, 0o777)
        os.mkdir(f"{work}/mnt")
        os.chmod(f"{work}/mnt", 0o777)
        script = (f"mknod -m 600 {work}/fuse c 10 229 && mount --bind {work}/fuse /dev/fuse && "
                  f"exec setpriv --reuid=65534 --regid=65534 --clear-groups "
                  f"env EXECFS_API_KEY=k {EXECFS} dune:http://127.0.0.1:9 {work}/mnt "
                  f"-o cache_dir={work}/cache")
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0
        assert "execfs: /dev/fuse is not open to you (mode 0600" in r.stderr, r.stderr
        assert "chmod 0666 /dev/fuse" in r.stderr
    finally:
        subprocess.run(["rm", "-rf", work])
