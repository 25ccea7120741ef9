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
