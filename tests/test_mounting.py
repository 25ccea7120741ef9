"""Mounting the usual ways: mount -t fuse.execfs, /etc/fstab, a systemd unit,
the man page and `meson install` (the files in mount-examples/ and doc/).

mount(8) runs its helper, mount.fuse3, without the caller's PATH, and
mount.fuse3 starts `/bin/sh -c "'execfs' SOURCE MOUNTPOINT -o OPTIONS"`, so the
shell finds execfs in its default path (dash: /usr/local/sbin:/usr/local/bin:
/usr/sbin:/usr/bin:/sbin:/bin). To run the binary under test there without
touching the machine, the mount(8) tests run in a private mount namespace
(unshare -m) in which a directory holding an `execfs` symlink is bind-mounted
over /usr/local/sbin. Their FUSE mounts live in that namespace only: nothing is
visible outside, and everything is unmounted before the namespace ends.

Needs: util-linux (mount, unshare), fuse3 (mount.fuse3, fusermount3); optional:
systemd (systemd-analyze), scdoc (the man page), groff-base and man-db (to
render it), meson (meson install). A part whose tool is missing is skipped
with the reason.
"""
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import time

import pytest

from conftest import (EXECFS, ROOT, FakeDune, FakeRedash, Mount, fake_latest_csv,
                      new_key, source_of)

EXAMPLES = os.path.join(ROOT, "mount-examples")
UNIT = os.path.join(EXAMPLES, "execfs-dune.service")
FSTAB = os.path.join(EXAMPLES, "fstab")
MAN_SOURCE = os.path.join(ROOT, "doc", "execfs.1.scd")
BUILD_DIR = os.path.dirname(os.path.abspath(EXECFS))
MOUNT_FUSE3 = shutil.which("mount.fuse3", path="/sbin:/usr/sbin")


# ---- helpers -----------------------------------------------------------------

def key_file(tmp_path, key, name="key", mode=0o600):
    path = tmp_path / name
    path.write_text(key + "\n")
    os.chmod(path, mode)
    return str(path)


def bin_dir(tmp_path):
    """A directory holding `execfs`, a symlink to the binary under test."""
    d = tmp_path / "bin"
    if not d.exists():
        d.mkdir()
        (d / "execfs").symlink_to(os.path.abspath(EXECFS))
    return str(d)


def mounts_under(prefix):
    """Mountpoints under prefix in this mount namespace, newest last."""
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f]
    return [p for p in points if p.startswith(prefix + "/")]


def daemons_under(prefix):
    """(pid, exe, argv) of every execfs process whose argv names a path under prefix."""
    found = []
    real = os.path.realpath(EXECFS)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if exe == real and any(prefix.encode() in a for a in argv):
            found.append((int(pid), exe, [a.decode(errors="replace") for a in argv if a]))
    return found


def clean_up(prefix):
    """Unmounts whatever is mounted under prefix (-u, then -uz) and ends the
    daemons this test started, by their pids."""
    for point in reversed(mounts_under(prefix)):
        if subprocess.run(["fusermount3", "-u", point], capture_output=True).returncode:
            subprocess.run(["fusermount3", "-uz", point], capture_output=True)
    deadline = time.monotonic() + 10
    while daemons_under(prefix) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid, _, _ in daemons_under(prefix):
        os.kill(pid, signal.SIGKILL)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("EXECFS_API_KEY", "DUNE_API_KEY", "REDASH_API_KEY")}
    env.update(extra)
    return env


def need_mount_namespace():
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"needs a private mount namespace (unshare -m): {r.stderr.strip()}")


# Run inside the namespace by the script of each mount(8) test: $T is the test's
# temporary directory; `daemons` lists the execfs processes serving under it
# ("pid exe argv"); on exit everything mounted under $T is unmounted.
PRELUDE = r"""
set -eu
daemons() {
    for d in /proc/[0-9]*; do
        c=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null) || continue
        e=$(readlink "$d/exe" 2>/dev/null) || continue
        case "$c" in *"$T"*) case "$e" in */execfs) echo "${d#/proc/} $e $c";; esac;; esac
    done
}
cleanup() {
    for m in $(awk -v t="$T/" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | tac); do
        fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"
    done
}
trap cleanup EXIT
mount --bind "$BIN" /usr/local/sbin
"""


def in_mount_namespace(tmp_path, script, env, timeout=60):
    """Runs script (sh) in a private mount namespace where `execfs` is the
    binary under test; returns the CompletedProcess."""
    need_mount_namespace()
    env = clean_env(T=str(tmp_path), BIN=bin_dir(tmp_path), **env)
    try:
        return subprocess.run(["unshare", "--mount", "--propagation", "private",
                               "/bin/sh", "-c", PRELUDE + script],
                              capture_output=True, text=True, env=env, timeout=timeout)
    finally:
        # the namespace is gone once its last daemon exits: make sure it does
        deadline = time.monotonic() + 10
        while daemons_under(str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid, _, _ in daemons_under(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)


def check_daemon_lines(text, key):
    """The `daemons` lines: one execfs, the binary under test, no key in argv."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    _, exe, argv = lines[0].split(" ", 2)
    assert exe == os.path.realpath(EXECFS)
    assert key not in argv and "key_file=" in argv
    return argv


def no_key_in_files(key, *dirs):
    for top in dirs:
        for dirpath, _, files in os.walk(top):
            for name in files:
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    continue
                with open(path, "rb") as f:
                    assert key.encode() not in f.read(), f"the key is in {path}"


# ---- mount -t fuse.execfs ----------------------------------------------------------

def test_mount_t_fuse_execfs(fake, tmp_path):
    """mount -t fuse.execfs SOURCE DIR -o ... with what fstab lines and mount(8)
    add; mount returns once the filesystem answers."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    key = key_file(tmp_path, fake.key)
    out = tmp_path / "out"
    out.mkdir()
    options = (f"key_file={key},cache_dir={tmp_path / 'cache'},_netdev,nofail,noatime,"
               "x-systemd.automount,x-systemd.requires=network-online.target,comment=execfs")
    r = in_mount_namespace(tmp_path, r"""
mount -t fuse.execfs "$SOURCE" "$MNT" -o "$OPTIONS"
grep " $MNT " /proc/self/mounts > "$OUT/mounts"
daemons > "$OUT/daemons"
cat "$MNT/queries/1001/latest.csv" > "$OUT/latest.csv"
fusermount3 -u "$MNT"
grep -c " $MNT " /proc/self/mounts > "$OUT/after" || true
""", env={"SOURCE": source_of(fake), "MNT": str(mnt), "OPTIONS": options, "OUT": str(out)})
    assert r.returncode == 0, r.stderr
    source, point, fstype, opts = (out / "mounts").read_text().split()[:4]
    assert (source, point, fstype) == (source_of(fake), str(mnt), "fuse.execfs")
    assert "noatime" in opts.split(",") and "default_permissions" in opts.split(",")
    check_daemon_lines((out / "daemons").read_text(), fake.key)
    assert (out / "latest.csv").read_bytes() == fake_latest_csv(fake, 1001)
    assert (out / "after").read_text().strip() == "0"
    assert fake.log() and all(e["key_ok"] and not e["key_in_url"] for e in fake.log())
    assert fake.key not in r.stdout + r.stderr
    no_key_in_files(fake.key, tmp_path / "cache", out)


@pytest.mark.skipif(MOUNT_FUSE3 is None, reason="needs mount.fuse3 (package fuse3)")
def test_mount_fuse3_finds_execfs_in_path(fake, tmp_path):
    """mount.fuse3 run by hand (as mount(8) would, plus the options it adds as
    root) finds execfs in PATH."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    key = key_file(tmp_path, fake.key)
    options = (f"rw,key_file={key},cache_dir={tmp_path / 'cache'},_netdev,noauto,nofail,"
               "dev,suid,defaults,x-systemd.automount")
    env = clean_env(PATH=bin_dir(tmp_path) + ":/usr/sbin:/usr/bin:/sbin:/bin")
    try:
        r = subprocess.run([MOUNT_FUSE3, source_of(fake), str(mnt), "-t", "fuse.execfs",
                            "-o", options], capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(mnt)
        (_, exe, argv), = daemons_under(str(tmp_path))
        assert exe == os.path.realpath(EXECFS) and fake.key not in " ".join(argv)
        with open(mnt / "queries" / "1001" / "latest.csv", "rb") as f:
            assert f.read() == fake_latest_csv(fake, 1001)
    finally:
        clean_up(str(tmp_path))
    assert not mounts_under(str(tmp_path))


def test_fstab_and_mount_options_accepted_when_run_directly(fake, tmp_path):
    """The options of an fstab line (or a unit copying them) mean nothing to
    execfs and are accepted when it is run by hand; an unknown one is not."""
    options = ["defaults", "auto", "noauto", "user", "users", "nouser", "nofail", "_netdev",
               "comment=systemd.automount", "x-systemd.automount",
               "x-systemd.idle-timeout=10min", "X-mount.mkdir", "relatime", "nodiratime"]
    m = Mount(fake, tmp_path, options=options)
    m.start()
    try:
        assert open(m.p("queries", "1001", "latest.csv"), "rb").read() == \
            fake_latest_csv(fake, 1001)
        with open("/proc/mounts") as f:
            line, = [line.split() for line in f if line.split()[1] == m.path]
        # the mount table names the source, as the fstab line does: mount -a
        # then sees the line is mounted already
        assert line[0] == source_of(fake) and line[2] == "fuse.execfs"
    finally:
        m.stop()
    r = subprocess.run([EXECFS, source_of(fake), str(tmp_path / "mnt"), "-o", "x_bogus,nodev"],
                       capture_output=True, text=True, env=clean_env(EXECFS_API_KEY=fake.key))
    assert r.returncode != 0 and "x_bogus" in r.stderr


# ---- /etc/fstab -------------------------------------------------------------------

def fstab_from_template(tmp_path, dune, redash):
    """mount-examples/fstab with this test's sources, mountpoints, keys and caches."""
    lines = [line.split() for line in open(FSTAB) if line.strip() and not line.startswith("#")]
    assert [f[:3] for f in lines] == [["dune", "/mnt/dune", "fuse.execfs"],
                                      ["redash:https://query.nansen.ai", "/mnt/nansen",
                                       "fuse.execfs"]], "mount-examples/fstab changed"
    sources = {"dune": source_of(dune), "redash:https://query.nansen.ai": source_of(redash)}
    out = []
    for source, point, fstype, options, dump, passno in lines:
        assert "/etc/execfs/" in options and "/var/cache/execfs/" in options
        options = options.replace("/etc/execfs/", f"{tmp_path}/keys/")
        options = options.replace("/var/cache/execfs/", f"{tmp_path}/cache/")
        point = point.replace("/mnt/", f"{tmp_path}/")
        out.append(f"{sources[source]} {point} {fstype} {options} {dump} {passno}")
    body = "\n".join(out) + "\n"
    path = tmp_path / "fstab"
    path.write_text(body)
    return str(path), body


def test_fstab_lines(tmp_path):
    """mount-examples/fstab: mount -a mounts the _netdev line, not the noauto
    one, and is idempotent; the noauto line mounts by its mountpoint."""
    dune = FakeDune(key=new_key("dune"), time_scale=0.2)
    redash = FakeRedash(key=new_key("redash"), time_scale=0.2)
    dune.start()
    redash.start()
    try:
        (tmp_path / "keys").mkdir()
        key_file(tmp_path / "keys", dune.key, "dune-key")
        key_file(tmp_path / "keys", redash.key, "nansen-key")
        for name in ("dune", "nansen", "out"):
            (tmp_path / name).mkdir()
        fstab, body = fstab_from_template(tmp_path, dune, redash)
        assert "_netdev" in body.splitlines()[0]
        assert "noauto,x-systemd.automount" in body.splitlines()[1]
        r = in_mount_namespace(tmp_path, r"""
table() { awk -v t="$T/" 'index($2, t) == 1 { print $1, $2, $3 }' /proc/self/mounts; }
mount -a --fstab "$FSTAB"
table > "$T/out/after-a"
mount -a --fstab "$FSTAB"
table > "$T/out/after-a-again"
mount --fstab "$FSTAB" "$T/nansen"
table > "$T/out/after-nansen"
daemons > "$T/out/daemons"
cat "$T/dune/queries/1001/latest.csv" > "$T/out/dune.csv"
cat "$T/nansen/queries/1001/latest.csv" > "$T/out/nansen.csv"
umount "$T/nansen"
umount "$T/dune"
table > "$T/out/after-umount"
""", env={"FSTAB": fstab})
        assert r.returncode == 0, r.stderr
        out = tmp_path / "out"
        d = f"{source_of(dune)} {tmp_path}/dune fuse.execfs"
        n = f"{source_of(redash)} {tmp_path}/nansen fuse.execfs"
        assert (out / "after-a").read_text().splitlines() == [d]
        assert (out / "after-a-again").read_text().splitlines() == [d]
        assert (out / "after-nansen").read_text().splitlines() == [d, n]
        assert (out / "after-umount").read_text() == ""
        lines = (out / "daemons").read_text().splitlines()
        assert len(lines) == 2
        for line in lines:
            _, exe, argv = line.split(" ", 2)
            assert exe == os.path.realpath(EXECFS)
            assert dune.key not in argv and redash.key not in argv
        assert (out / "dune.csv").read_bytes() == fake_latest_csv(dune, 1001)
        assert (out / "nansen.csv").read_bytes() == fake_latest_csv(redash, 1001)
        for f in (dune, redash):
            assert f.log() and all(e["key_ok"] and not e["key_in_url"] for e in f.log())
        no_key_in_files(dune.key, tmp_path / "cache", out)
        no_key_in_files(redash.key, tmp_path / "cache", out)
    finally:
        dune.stop()
        redash.stop()


# ---- the systemd unit ---------------------------------------------------------------

def read_unit(path):
    """{section: [(key, value), ...]} of a unit file."""
    sections, current = {}, None
    for raw in open(path):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def expand_specifiers(value, specifiers):
    def one(m):
        assert m.group(1) in specifiers, f"specifier %{m.group(1)} not handled by this test"
        return specifiers[m.group(1)]
    return re.sub(r"%(.)", one, value)


def exec_argv(value, env):
    """A unit's Exec*= line as systemd runs it: (argv, failure ignored).
    ${VAR} expands within a word, a lone $VAR into words (systemd.service(5))."""
    ignore = False
    while value[0] in "-@:+!":
        ignore |= value[0] == "-"
        value = value[1:]
    argv = []
    for word in shlex.split(value):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            argv += env.get(m.group(1), "").split()
            continue
        argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""),
                           word))
    return argv, ignore


def test_systemd_unit_verifies(tmp_path):
    """systemd-analyze verify finds nothing to say about the unit. It checks
    that each command exists, so the copy verified names the binary under
    test unless execfs is installed; --man=no, as execfs(1) may not be
    installed either."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("needs systemd-analyze (package systemd)")
    text = open(UNIT).read()
    if not os.access("/usr/local/bin/execfs", os.X_OK):
        text = text.replace("/usr/local/bin/execfs", os.path.abspath(EXECFS))
    copy = tmp_path / "execfs-dune.service"
    copy.write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), \
        r.stdout + r.stderr


def test_systemd_unit_exec_start(fake, tmp_path):
    """Runs the unit's commands the way systemd would: ExecStartPre, ExecStart
    (Type=forking: it returns once mounted), then ExecStop and ExecStopPost,
    with the key as a credential in $CREDENTIALS_DIRECTORY (a file of mode
    0400, as systemd leaves it) and the environment systemd would give.

    systemd is not PID 1 here, so this is not systemd running the unit: that
    check needs a machine booted with systemd (systemctl start execfs-dune)."""
    unit = read_unit(UNIT)
    service = dict(unit["Service"])
    assert service["Type"] == "forking"
    assert service["LoadCredential"] == "dune-key:/etc/execfs/dune-key"
    assert "key_file=${CREDENTIALS_DIRECTORY}/dune-key" in service["ExecStart"]

    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    key_file(creds, fake.key, "dune-key", mode=0o400)
    cache_root = tmp_path / "cache-root"
    (cache_root / "execfs").mkdir(parents=True, mode=0o700)  # CacheDirectory=execfs
    mnt = tmp_path / "mnt" / "dune"
    specifiers = {"C": str(cache_root), "%": "%"}

    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8"}
    for key, value in unit["Service"]:
        if key == "Environment":
            for word in shlex.split(expand_specifiers(value, specifiers)):
                name, _, val = word.partition("=")
                env[name] = val
    # what `systemctl edit` would set for this machine
    env.update(SOURCE=source_of(fake), MOUNTPOINT=str(mnt),
               CREDENTIALS_DIRECTORY=str(creds), CACHE_DIRECTORY=str(cache_root / "execfs"))

    def run(name):
        for key, value in unit["Service"]:
            if key != name:
                continue
            argv, ignore = exec_argv(expand_specifiers(value, specifiers), env)
            if os.path.basename(argv[0]) == "execfs":
                argv[0] = os.path.abspath(EXECFS)
            assert fake.key not in " ".join(argv)
            r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL)
            assert ignore or r.returncode == 0, f"{name}: {argv}: {r.stderr}"

    try:
        run("ExecStartPre")
        run("ExecStart")
        assert os.path.ismount(mnt)  # forking: mounted when ExecStart returns
        (pid, exe, argv), = daemons_under(str(tmp_path))
        assert exe == os.path.realpath(EXECFS) and fake.key not in " ".join(argv)
        with open(mnt / "queries" / "1001" / "latest.csv", "rb") as f:
            assert f.read() == fake_latest_csv(fake, 1001)
        # the cache went to %C/execfs/<source>, not to a HOME the service lacks
        assert [p for p in (cache_root / "execfs").iterdir() if p.is_dir()]
        run("ExecStop")
        assert not os.path.ismount(mnt)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not daemons_under(str(tmp_path)), "the daemon outlived ExecStop"
        run("ExecStopPost")
    finally:
        clean_up(str(tmp_path))
    assert not mounts_under(str(tmp_path))
    assert fake.log() and all(e["key_ok"] and not e["key_in_url"] for e in fake.log())
    no_key_in_files(fake.key, cache_root)


# ---- the man page and meson install ------------------------------------------------------

def built_man_page():
    path = os.path.join(BUILD_DIR, "execfs.1")
    if not os.path.exists(path):
        pytest.skip(f"{path} not built: scdoc was not found when {BUILD_DIR} was set up")
    return path


def test_man_page():
    page = built_man_page()
    if shutil.which("man"):
        r = subprocess.run(["man", "-l", page], capture_output=True, text=True,
                           env=clean_env(MANWIDTH="80", MANPAGER="cat", PAGER="cat"))
        assert r.returncode == 0, r.stderr
        text = r.stdout
    else:
        text = open(page).read()
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "SOURCES", "OPTIONS", "THE TREE",
                    "SEMANTICS", "ERRORS", "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.M), section
    flat = re.sub(r".\x08", "", text)
    # every execfs option of --help, and every errno of the README's table
    help_text = subprocess.run([EXECFS, "--help"], capture_output=True, text=True).stdout
    for option in re.findall(r"-o (\w+)=", help_text):
        assert option + "=" in flat, option
    readme = open(os.path.join(ROOT, "README.md")).read()
    errors = readme.split("### Errors", 1)[1].split("\n\n", 2)[1]
    for errno_name in re.findall(r"\| (E[A-Z]+) \|", errors):
        assert errno_name in flat, errno_name
    for example in ("mount -t fuse.execfs", "fuse.execfs  _netdev", "x-systemd.automount",
                    "LoadCredential=", "${CREDENTIALS_DIRECTORY}", "echo days=7"):
        assert example in flat, example
    if shutil.which("groff"):
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page],
                           capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def test_meson_install(tmp_path):
    """meson install puts execfs in bindir (which mount(8)'s helper searches)
    and execfs(1) in mandir/man1. --no-rebuild: installs what is built, never
    rebuilds the binary other tests are running."""
    if not shutil.which("meson"):
        pytest.skip("needs meson")
    if not os.path.isdir(os.path.join(BUILD_DIR, "meson-private")):
        pytest.skip(f"{BUILD_DIR} is not a meson build directory")
    dest = tmp_path / "dest"
    r = subprocess.run(["meson", "install", "-C", BUILD_DIR, "--no-rebuild", "--destdir",
                        str(dest)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    options = {o["name"]: o["value"] for o in json.loads(subprocess.run(
        ["meson", "introspect", "--buildoptions", BUILD_DIR],
        capture_output=True, text=True, check=True).stdout)}
    prefix = options["prefix"]
    bindir = os.path.join(prefix, options["bindir"])
    program = str(dest) + os.path.join(bindir, "execfs")
    assert os.access(program, os.X_OK)
    r = subprocess.run([program, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("execfs ")
    if prefix in ("/usr/local", "/usr"):
        assert bindir in ("/usr/local/bin", "/usr/bin"), "not where mount.fuse3's shell looks"
    if os.path.exists(os.path.join(BUILD_DIR, "execfs.1")):
        page = str(dest) + os.path.join(prefix, options["mandir"], "man1", "execfs.1")
        assert os.path.exists(page)
        assert stat.S_IMODE(os.stat(page).st_mode) & 0o444 == 0o444
    installed = sorted(os.path.relpath(os.path.join(d, f), dest)
                       for d, _, files in os.walk(dest) for f in files)
    assert len(installed) == (2 if os.path.exists(os.path.join(BUILD_DIR, "execfs.1")) else 1), \
        installed
