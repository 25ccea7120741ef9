"""Bad input of every kind, through a real mount and ordinary syscalls: names
that are not ids, requests to `execute` that are not requests, changes to a
tree that cannot change, and users who are not the mounter.

What counts as an id (README, "The tree"): a <qid> is a decimal
number without leading zeros, at most 18 digits; an <eid> is
[A-Za-z0-9_-]{1,64} for both backends (Dune's ULIDs, Redash's job uuids), and
for redash also "result-<result id>" (a result id is an integer, so in its
canonical form: no leading zero). Anything else is ENOENT with no request.
A name longer than NAME_MAX (255 bytes) may instead be ENAMETOOLONG, when the
kernel refuses it before execfs sees it. An id-shaped <eid> that does not
exist costs its one status request (looking up an unknown execution
asks the API once).

`.` and `..` never reach execfs: the kernel resolves them, so
`queries/..` is the root, as on any filesystem.
"""
import csv
import errno
import json
import os
import pathlib
import shutil
import stat
import subprocess
import tempfile

import pytest

from conftest import Mount, execute, kind_of, requests_for, wait_for

NAME_MAX = 255


def errno_of(fn):
    """0 when fn succeeds, else the errno it failed with."""
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0


def write_outcome(fd, data):
    """What os.write answers: the count written, or the errno's name."""
    try:
        return os.write(fd, data)
    except OSError as e:
        return name_of(e.errno)


def name_of(code):
    return errno.errorcode.get(code, str(code)) if code else "ok"


def api_requests(fake):
    return [(e["method"], e["path"]) for e in fake.log()]


def long_name(name):
    return len(name.encode()) > NAME_MAX


def lookup_outcome(path, name):
    """The errno of stat() of path, named; a name over NAME_MAX may be the
    kernel's ENAMETOOLONG instead of execfs's ENOENT."""
    code = errno_of(lambda: os.stat(path))
    if code == errno.ENAMETOOLONG and long_name(name):
        code = errno.ENOENT
    return name_of(code)


# Files are read whole and closed at once: a file object kept alive by a failed
# assertion's traceback would hold the mount busy at unmount.
def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def read_text(path):
    with open(path) as f:
        return f.read()


def rows_of(m, eid):
    with open(m.p("executions", eid, "results.csv"), newline="") as f:
        return list(csv.DictReader(f))


# ---- 1. names that are not ids ---------------------------------------------

NOT_IDS_ANYWHERE = [
    "...", "%2f", "%2F..%2F", "..%2f1001", "x" * 256, "1" * 256, "x" * 1000,
    "1\x01", "\x01", "\n", "1\n", "\t", "\t1", "1\x7f", "\x1b[31m",
    "é", "1é", "\U0001F600", "1\U0001F600", "\uff11",  # fullwidth one
    "\u0661",  # Arabic-Indic one
    "?api_key=x", "1?api_key=x", "1&api_key=x", "1#x",
    "1 ", " 1", "+1", "1.0", "1,2", "1;id", "$(id)", "`id`", "*",
]
NOT_QIDS = NOT_IDS_ANYWHERE + [
    "-1", "01", "007", "0", "00", "1e3", "0x10", "1_000", "1-2", "abc",
    "1000000000000000000",  # 19 digits
    "18446744073709551616",  # 2**64
    "9" * 40,
]


def test_names_that_are_not_query_ids_are_enoent_without_a_request(mnt, fake):
    fake.reset()
    outcomes, expected = {}, {}
    for name in NOT_QIDS:
        base = mnt.p("queries", name)
        outcomes[repr(name)] = (lookup_outcome(base, name),
                                lookup_outcome(os.path.join(base, "latest.csv"), name),
                                lookup_outcome(os.path.join(base, "execute"), name))
        expected[repr(name)] = ("ENOENT", "ENOENT", "ENOENT")
    assert outcomes == expected
    assert api_requests(fake) == []
    assert os.listdir(mnt.p("queries")) == []
    # the edges of a valid id: 1 and 18 digits exist, with no request either
    for name in ("1", "999999999999999999"):
        assert stat.S_ISDIR(os.stat(mnt.p("queries", name)).st_mode)
    assert api_requests(fake) == []


def test_names_that_are_not_execution_ids_are_enoent_without_a_request(mnt, fake):
    fake.reset()
    outcomes, expected = {}, {}
    for name in NOT_IDS_ANYWHERE + ["a" * 65, "0" * 65, "bad.id", "a b", "a:b", "result-1.5"]:
        base = mnt.p("executions", name)
        outcomes[repr(name)] = (lookup_outcome(base, name),
                                lookup_outcome(os.path.join(base, "status"), name),
                                lookup_outcome(os.path.join(base, "results.csv"), name))
        expected[repr(name)] = ("ENOENT", "ENOENT", "ENOENT")
    assert outcomes == expected
    assert api_requests(fake) == []
    assert os.listdir(mnt.p("executions")) == []


def test_a_path_longer_than_path_max_is_the_kernels_enametoolong(mnt, fake):
    fake.reset()
    for parent in ("queries", "executions"):
        assert errno_of(lambda: os.stat(mnt.p(parent, "1" * 5000))) == errno.ENAMETOOLONG
    assert api_requests(fake) == []


ID_SHAPED_EIDS = ["-1", "01", "0", "1e3", "0x10", "_", "--", "9" * 40, "a" * 64]


def test_id_shaped_unknown_executions_cost_one_status_request_each(mnt, fake):
    # valid by the id pattern, so the API is asked, once, and says no
    fake.reset()
    outcomes = {}
    for name in ID_SHAPED_EIDS:
        code = errno_of(lambda: os.stat(mnt.p("executions", name)))
        outcomes[name] = (name_of(code), len(requests_for(fake, "status", name)))
    assert outcomes == {name: ("ENOENT", 1) for name in ID_SHAPED_EIDS}
    assert len(fake.log()) == len(ID_SHAPED_EIDS)  # nothing but those status requests
    assert all(e["method"] == "GET" for e in fake.log())
    assert os.listdir(mnt.p("executions")) == []


@pytest.mark.backends("redash")
def test_redash_result_ids_not_in_canonical_form_are_enoent_without_a_request(mnt, fake):
    # a Redash result id is an integer: "result-01" or a 30-digit id names no result,
    # and must not become an execution (listed, persisted) by being looked up
    fake.reset()
    names = ["result-01", "result-007", "result-00", "result-" + "9" * 30]
    outcomes = {name: name_of(errno_of(lambda: os.stat(mnt.p("executions", name)))) for name in names}
    assert outcomes == {name: "ENOENT" for name in names}
    assert api_requests(fake) == []
    assert os.listdir(mnt.p("executions")) == []


def test_dot_components_are_resolved_by_the_kernel(mnt, fake):
    eid = execute(mnt, 1001)
    fake.reset()
    root = os.stat(mnt.path)
    assert os.stat(mnt.p("queries", "..")).st_ino == root.st_ino
    assert os.stat(mnt.p("executions", "..")).st_ino == root.st_ino
    assert os.stat(mnt.p("queries", ".")).st_ino == os.stat(mnt.p("queries")).st_ino
    assert os.stat(mnt.p("queries", "1001", "..")).st_ino == os.stat(mnt.p("queries")).st_ino
    assert os.stat(mnt.p("executions", eid, "..")).st_ino == os.stat(mnt.p("executions")).st_ino
    # a bad id before `..` is looked up, and refused, first
    assert errno_of(lambda: os.stat(mnt.p("queries", "01", "..", "1001"))) == errno.ENOENT
    assert api_requests(fake) == []


BAD_FILE_NAMES = ["...", "latest.csv ", " latest.csv", "LATEST.CSV", "latest.csv\n", "latest",
                  "latest.csv?x", "latest.csv;x", "latest.csv.part", ".latest.csv", "latest.tsv",
                  "%2e%2e", "é", "\U0001F600", "\x01", "x" * 300, "status.JSON", "results.csv~",
                  "execute ", "error\t", "cancel.", "query "]


def test_bad_names_below_an_id_are_enoent_without_a_request(mnt, fake):
    eid = execute(mnt, 1001)
    fake.reset()
    parents = {"query": mnt.p("queries", "1001"), "execution": mnt.p("executions", eid),
               "through last": mnt.p("queries", "1001", "last")}
    outcomes, expected = {}, {}
    for label, parent in parents.items():
        for name in BAD_FILE_NAMES:
            outcomes[(label, repr(name))] = lookup_outcome(os.path.join(parent, name), name)
            expected[(label, repr(name))] = "ENOENT"
    # a file used as a directory: the kernel's ENOTDIR
    for path in (mnt.p("queries", "1001", "latest.csv", "x"), mnt.p("queries", "1001", "execute", ".."),
                 mnt.p("executions", eid, "status", "x"), mnt.p("queries", "1001", "error", "")):
        outcomes[path] = name_of(errno_of(lambda: os.stat(path)))
        expected[path] = "ENOTDIR"
    assert outcomes == expected
    assert api_requests(fake) == []


def test_coreutils_see_no_such_file(mnt, fake):
    fake.reset()
    for cmd in (["ls", mnt.p("queries", "01")], ["cat", mnt.p("queries", "1e3", "latest.csv")],
                ["stat", mnt.p("queries", "1 ")], ["cat", mnt.p("executions", "bad.id", "status")],
                ["ls", mnt.p("executions", "%2f")], ["head", mnt.p("queries", "-1", "latest.csv")]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        assert out.returncode != 0 and "No such file or directory" in out.stderr, (cmd, out)
    assert api_requests(fake) == []


# ---- 2. writes to execute that are not requests ----------------------------

NOT_VALID_JSON = "the request is not valid JSON\n"
NOT_AN_OBJECT = "the JSON request must be an object of parameters\n"
NOT_LINES = "expected name=value lines or a JSON object\n"
TOO_LARGE = "the request is larger than 64 KiB\n"
HAS_NUL = "the request holds a NUL byte\n"
CLOSED_UNFINISHED = "the request is not valid JSON: it was closed before its end; nothing was sent\n"
NOT_LINES_OR_UTF8 = None  # either reason fits bytes that are not text: NOT_LINES, or one naming UTF-8

BAD_REQUESTS = {
    "json cut short": (b'{"days": 2,', CLOSED_UNFINISHED),
    "json with junk after": (b'{"days": 2} days=3', NOT_VALID_JSON),
    "json single quotes": (b"{'days': 2}", NOT_VALID_JSON),
    "json trailing comma": (b'{"days": 2,}', NOT_VALID_JSON),
    "json nested 1000 deep": (b'{"days": ' + b"[" * 1000 + b"]" * 1000 + b"}", NOT_VALID_JSON),
    "json array": (b'[{"days": 2}]', NOT_AN_OBJECT),
    "json string": (b'"days=2"', NOT_AN_OBJECT),
    "json number": (b"42", NOT_LINES),
    "json negative float": (b"-1.5e3", NOT_LINES),
    "json true": (b"true", NOT_LINES),
    "json null": (b"null", NOT_LINES),
    "1 MB of x": (b"x" * (1 << 20), TOO_LARGE),
    "1 MB of lines": (b"days=1\n" * ((1 << 20) // 7), TOO_LARGE),
    "1 MB json object": (json.dumps({"chain": "c" * (1 << 20)}).encode(), TOO_LARGE),
    "binary, high bytes": (bytes(range(0x80, 0x100)), NOT_LINES_OR_UTF8),
    "binary, png signature": (b"\x89PNG\r\n\x1a\n", NOT_LINES_OR_UTF8),
    "NUL alone": (b"\x00", HAS_NUL),
    "NUL between lines": (b"days=2\x00chain=base", HAS_NUL),
    "NUL after json": (b'{"days": 2}\x00', HAS_NUL),
    "NUL in binary": (b"\xff\xfe\x00\x01", HAS_NUL),
    "empty name": (b"=2", "a parameter line has an empty name\n"),
    "name over 255 bytes": (b"d" * 300 + b"=1", "a parameter name is too long\n"),
    "name given twice": (b"days=1\ndays=2\n", "a parameter is given twice\n"),
}
MAY_CONTINUE = {"json cut short"}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_einval_in_write_with_reason_and_sends_nothing(mnt, fake, case):
    body, reason = BAD_REQUESTS[case]
    q = mnt.p("queries", "1003")
    before = fake.executions()["1003"]
    fake.reset()
    fd = os.open(q + "/execute", os.O_RDWR)
    closed = False
    try:
        rc = errno_of(lambda: os.write(fd, body))
        if case in MAY_CONTINUE and rc == 0:
            # the start of a JSON object, which a later write() may complete.
            # close() cannot fail it: every close of a duplicate descriptor
            # flushes, and the end may come through another. The last close
            # (release, which the kernel sends after close() returns) says
            # why in `error`.
            closed = True
            assert errno_of(lambda: os.close(fd)) == 0
            wait_for(lambda: read_bytes(q + "/error") == reason.encode())
        else:
            assert name_of(rc) == "EINVAL"
            # a writer that resends the failed buffer (Python, stdio) gets the same, sends nothing
            assert name_of(errno_of(lambda: os.write(fd, body))) == "EINVAL"
            assert os.pread(fd, 100, 0) == b""  # no execution id to read back
    finally:
        if not closed:
            os.close(fd)  # the error was write()'s: close() is clean
    error = read_bytes(q + "/error")
    if reason is NOT_LINES_OR_UTF8:
        assert error == NOT_LINES.encode() or (b"UTF-8" in error and error.endswith(b"\n")), error
    else:
        assert error == reason.encode()
    assert api_requests(fake) == []
    assert fake.executions()["1003"] == before
    assert not os.path.lexists(q + "/last")


# Not valid UTF-8: a JSON text is UTF-8 (RFC 8259 §8.1), and a request body that
# is not is malformed input: refused here, not sent for the API to judge (or to
# run with mojibake).
NOT_UTF8 = {
    "lines, high bytes in a value": b"chain=\xff\xfe",
    "lines, cut multibyte": b"chain=caf\xc3",
    "json, bad byte in a string": b'{"chain": "\xc3\x28"}',
    "json, overlong slash": b'{"chain": "\xc0\xaf"}',
}


@pytest.mark.parametrize("case", list(NOT_UTF8))
def test_request_not_in_utf8_is_einval_and_sends_nothing(mnt, fake, case):
    q = mnt.p("queries", "1003")
    fake.reset()
    fd = os.open(q + "/execute", os.O_WRONLY)
    try:
        assert errno_of(lambda: os.write(fd, NOT_UTF8[case])) == errno.EINVAL
    finally:
        os.close(fd)
    assert b"UTF-8" in read_bytes(q + "/error")
    assert api_requests(fake) == []
    assert fake.executions()["1003"] == 0


def test_json_naming_a_parameter_twice_is_einval_like_lines(mnt, fake):
    # `days=1\ndays=2` is refused; the same in JSON must not be sent with one of them
    # silently dropped (or both, for the API to pick)
    q = mnt.p("queries", "1003")
    fake.reset()
    fd = os.open(q + "/execute", os.O_WRONLY)
    try:
        assert errno_of(lambda: os.write(fd, b'{"days": 1, "days": 2}')) == errno.EINVAL
    finally:
        os.close(fd)
    assert read_text(q + "/error") == "a parameter is given twice\n"
    assert api_requests(fake) == []
    assert fake.executions()["1003"] == 0


UNKNOWN_NAMES = {
    "nope=1": "nope", '{"nope": 1}': "nope", "DAYS=1": "DAYS", "days\x01=1": "days\x01",
    "\u00e9=1": "\u00e9", '{"days ": 1}': "days ",
}


@pytest.mark.parametrize("text", list(UNKNOWN_NAMES))
def test_unknown_parameter_name_is_einval_and_starts_no_run(mnt, fake, text):
    name = UNKNOWN_NAMES[text]
    q = mnt.p("queries", "1003")
    fake.reset()
    fd = os.open(q + "/execute", os.O_WRONLY)
    try:
        assert errno_of(lambda: os.write(fd, text.encode())) == errno.EINVAL
    finally:
        os.close(fd)
    posts = [e for e in fake.log() if e["method"] == "POST"]
    if kind_of(fake) == "redash":
        # execfs reads the query's definitions and refuses the name itself
        assert read_text(q + "/error") == f"the query has no parameter named {name}\n"
        assert api_requests(fake) == [("GET", "/api/queries/1003")]
        assert posts == []
    else:
        # Dune's API has no definitions to read: it judges the names (400, free)
        assert read_text(q + "/error") == f"unknown parameters ({name})\n"
        assert [(e["path"], e["status"]) for e in posts] == [("/api/v1/query/1003/execute", 400)]
        assert len(fake.log()) == 1
    assert fake.executions()["1003"] == 0


def test_a_megabyte_through_cat_is_einval_and_sends_nothing(mnt, fake, tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"days=1\n" * 150000)
    fake.reset()
    out = subprocess.run(["bash", "-c", f"cat {big} > {mnt.p('queries', '1003', 'execute')}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "Invalid argument" in out.stderr
    assert read_text(mnt.p("queries", "1003", "error")) == TOO_LARGE
    assert api_requests(fake) == []
    assert fake.executions()["1003"] == 0


def test_lines_split_over_writes_start_one_run_with_the_first(mnt, fake):
    # one write() is one request, sent inside it. The first piece is a
    # whole request of its own and runs; the rest cannot join it.
    q = mnt.p("queries", "1003")
    fake.reset()
    fd = os.open(q + "/execute", os.O_RDWR)
    try:
        assert [write_outcome(fd, piece) for piece in (b"days=2\n", b"chain=base\n", b"\n")] == [
            7, "EINVAL", "EINVAL"]
        eid = os.pread(fd, 100, 0).decode().strip()
    finally:
        os.close(fd)
    assert eid and os.readlink(q + "/last") == f"../../executions/{eid}"
    assert read_text(q + "/error").startswith(f"this open file already started execution {eid}:")
    assert fake.executions()["1003"] == 1
    assert len(requests_for(fake, "execute", 1003)) == 1
    rows = rows_of(mnt, eid)
    assert len(rows) == 2 and {r["chain"] for r in rows} == {"ethereum"}  # days=2, chain's default


def test_json_split_over_writes_is_one_run_with_every_parameter(mnt, fake):
    # A JSON object says where it ends: pieces of one object on one open file
    # are one request, sent by the write() that completes it.
    # (one piece ends inside the two bytes of "é")
    q = mnt.p("queries", "1003")
    pieces = [b'{"days": 2,', b' "chain"', b': "caf\xc3', b'\xa9"', b"}\n"]
    fake.reset()
    fd = os.open(q + "/execute", os.O_RDWR)
    try:
        written = [write_outcome(fd, piece) for piece in pieces]
        eid = os.pread(fd, 100, 0).decode().strip()
    finally:
        os.close(fd)
    assert written == [len(piece) for piece in pieces]
    assert fake.executions()["1003"] == 1
    assert len(requests_for(fake, "execute", 1003)) == 1
    assert eid and os.readlink(q + "/last") == f"../../executions/{eid}"
    rows = rows_of(mnt, eid)
    assert len(rows) == 2 and {r["chain"] for r in rows} == {"caf\u00e9"}


def test_a_line_ending_inside_the_object_is_einval_not_a_silent_no_op(mnt, fake):
    # `echo '{"days": 3' > execute && cat last/results.csv` must not exit 0
    # and print an older run: the line ended, the object did not
    q = mnt.p("queries", "1003")
    execute(mnt, 1003, "days=2\n")  # an older run that `last` names
    last = os.readlink(q + "/last")
    fake.reset()
    before = fake.executions()["1003"]
    out = subprocess.run(["bash", "-c", f"echo '{{\"days\": 3' > {q}/execute && cat {q}/last/results.csv"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "Invalid argument" in out.stderr, out
    assert out.stdout == ""
    assert read_text(q + "/error") == ("the request is not valid JSON: the line ended before its object did "
                                       "(a '}' missing?); nothing was sent\n")
    assert os.readlink(q + "/last") == last
    assert fake.executions()["1003"] == before and api_requests(fake) == []
    # the same object written line by line by echo: the first line is refused
    out = subprocess.run(["bash", "-c", f"{{ echo '{{'; echo '\"days\": 3}}'; }} > {q}/execute"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "Invalid argument" in out.stderr
    assert fake.executions()["1003"] == before and api_requests(fake) == []


def test_json_split_around_a_closed_duplicate_is_one_run(mnt, fake, tmp_path):
    # Every close() of a duplicate descriptor flushes the file, and the
    # request's end may still come through another: a shell group whose
    # middle part is written by `cat` (which exits, closing its copy), and
    # bash's `>&3`, which dup2s and later closes a copy of fd 3.
    q = mnt.p("queries", "1003")
    (tmp_path / "days.txt").write_text("2")
    scripts = [
        f"{{ printf '{{\"days\": '; cat {tmp_path}/days.txt; printf ', \"chain\": \"base\"}}\\n'; }} > {q}/execute",
        f"exec 3>{q}/execute; printf '{{\"days\":' >&3; printf ' 2, \"chain\": \"base\"}}' >&3; exec 3>&-",
    ]
    for script in scripts:
        fake.reset()
        before = fake.executions()["1003"]
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and out.stderr == "", (script, out.stderr)
        assert fake.executions()["1003"] == before + 1
        assert len(requests_for(fake, "execute", 1003)) == 1
        eid = os.path.basename(os.readlink(q + "/last"))
        rows = rows_of(mnt, eid)
        assert len(rows) == 2 and {r["chain"] for r in rows} == {"base"}


def test_white_space_after_a_whole_request_is_part_of_it(mnt, fake):
    # stdio writes a request that fills its 4 KiB buffer exactly, then the
    # line break on its own: the run has started, and the line break is the
    # tail of its request, not an error that a script would retry (a second
    # paid run).
    q = mnt.p("queries", "1003")
    head = '{"days": 2, "chain": "'
    body = (head + "c" * (4096 - len(head) - 2) + '"}').encode()
    assert len(body) == 4096
    fake.reset()
    fd = os.open(q + "/execute", os.O_RDWR)
    try:
        assert [write_outcome(fd, piece) for piece in (body, b"\n", b" \r\n\t")] == [4096, 1, 4]
        eid = os.pread(fd, 100, 0).decode().strip()
        assert write_outcome(fd, b"days=3\n") == "EINVAL"  # anything else is not
    finally:
        os.close(fd)
    assert fake.executions()["1003"] == 1
    assert len(requests_for(fake, "execute", 1003)) == 1
    assert os.readlink(q + "/last") == f"../../executions/{eid}"


def test_a_byte_order_mark_first_is_not_part_of_the_request(mnt, fake, tmp_path):
    # a request saved by a Windows editor, then `cp`-ed or `cat`-ed to execute
    q = mnt.p("queries", "1003")
    for text in ("days=2\nchain=base\n", '{"days": 2, "chain": "base"}\n'):
        src = tmp_path / "request.txt"
        src.write_bytes(b"\xef\xbb\xbf" + text.encode())
        fake.reset()
        before = fake.executions()["1003"]
        out = subprocess.run(["cp", str(src), q + "/execute"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert fake.executions()["1003"] == before + 1
        eid = os.path.basename(os.readlink(q + "/last"))
        rows = rows_of(mnt, eid)
        assert len(rows) == 2 and {r["chain"] for r in rows} == {"base"}


def test_echo_of_a_request_longer_than_stdio_buffer_is_one_run(mnt, fake):
    # bash's echo writes through stdio: a request longer than its buffer
    # (st_blksize, at most BUFSIZ) reaches execute in several write() calls
    q = mnt.p("queries", "1003")
    chain = "c" * 5000
    text = json.dumps({"days": 2, "chain": chain})
    fake.reset()
    out = subprocess.run(["bash", "-c", f"echo '{text}' > {q}/execute"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert fake.executions()["1003"] == 1
    eid = os.path.basename(os.readlink(q + "/last"))
    rows = rows_of(mnt, eid)
    assert len(rows) == 2 and {r["chain"] for r in rows} == {chain}


def test_two_opens_are_two_runs(mnt, fake):
    q = mnt.p("queries", "1003")
    eids = []
    for days in (1, 2):
        fd = os.open(q + "/execute", os.O_RDWR)
        try:
            assert os.write(fd, f"days={days}\n".encode()) == 7
            eids.append(os.pread(fd, 100, 0).decode().strip())
        finally:
            os.close(fd)
    assert eids[0] != eids[1]
    assert fake.executions()["1003"] == 2
    assert len(requests_for(fake, "execute", 1003)) == 2
    assert [len(rows_of(mnt, eid)) for eid in eids] == [1, 2]


# ---- 3. the tree cannot change ---------------------------------------------

# setxattr(2): "ENOTSUP: extended attributes are not supported by the filesystem".
# execfs has no xattr handlers; the kernel turns libfuse's ENOSYS into this, and
# tools treat it as "no xattrs here" (cp -a, rsync -X, tar --xattrs go on)
NO_XATTRS = name_of(errno.EOPNOTSUPP)  # == ENOTSUP on Linux
QUERY_FILES = ["latest.csv", "latest.json", "latest.ndjson", "error"]
EXEC_FILES = ["status", "status.json", "results.csv", "results.json", "results.ndjson", "error"]


def settled_tree(m, fake):
    """A query with a finished run, every file of both read once (so that
    reading them again asks nothing); returns (qdir, edir) relative paths."""
    eid = execute(m, 1001)
    for name in EXEC_FILES:
        read_bytes(m.p("executions", eid, name))
    for name in QUERY_FILES:
        read_bytes(m.p("queries", "1001", name))
    return "queries/1001", f"executions/{eid}"


def snapshot(m, dirs):
    """Every listing, every entry's attributes, every readable file's bytes."""
    snap = {}
    for d in dirs:
        path = os.path.join(m.path, d)
        st = os.lstat(path)
        names = sorted(os.listdir(path))
        snap[d] = (names, st.st_mode, st.st_uid, st.st_gid, st.st_mtime, st.st_nlink)
        if d.count("/") != 1:
            continue  # the entries of / and of queries/, executions/ are in dirs
        for name in names:
            fp = os.path.join(path, name)
            st = os.lstat(fp)
            entry = [st.st_mode, st.st_size, st.st_uid, st.st_gid, st.st_mtime, st.st_nlink, st.st_ino]
            if stat.S_ISLNK(st.st_mode):
                entry.append(os.readlink(fp))
            elif stat.S_ISDIR(st.st_mode):  # stream/: the same files again
                entry.append(sorted(os.listdir(fp)))
            elif name != "cancel":  # write-only
                with open(fp, "rb") as f:
                    entry.append(f.read())
            snap[f"{d}/{name}"] = entry
    return snap


def tree_changes(m, q, e):
    """(description, operation, expected errno name) for every way to change the
    tree. New names carry a dot: not an id anywhere, so no lookup reaches the API."""
    P = lambda *parts: os.path.join(m.path, *parts)  # noqa: E731
    ops = []
    dirs = {"/": m.path, "queries": P("queries"), q: P(q), "executions": P("executions"), e: P(e)}
    for label, d in dirs.items():
        new = os.path.join(d, "new.x")
        ops += [
            (f"mkdir {label}/new.x", lambda new=new: os.mkdir(new), "EPERM"),
            (f"mknod S_IFREG {label}/new.x", lambda new=new: os.mknod(new, 0o600 | stat.S_IFREG), "EPERM"),
            (f"mkfifo {label}/new.x", lambda new=new: os.mkfifo(new), "EPERM"),
            (f"mknod S_IFCHR {label}/new.x",
             lambda new=new: os.mknod(new, 0o600 | stat.S_IFCHR, os.makedev(1, 3)), "EPERM"),
            (f"creat {label}/new.x", lambda new=new: os.close(os.open(new, os.O_CREAT | os.O_WRONLY, 0o600)),
             "EPERM"),
            (f"creat excl {label}/new.x",
             lambda new=new: os.close(os.open(new, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)), "EPERM"),
            (f"symlink {label}/new.x", lambda new=new: os.symlink("/etc/passwd", new), "EPERM"),
            (f"link latest.csv {label}/new.x", lambda new=new: os.link(P(q, "latest.csv"), new), "EPERM"),
            (f"chmod {label}", lambda d=d: os.chmod(d, 0o777), "EPERM"),
            (f"chown {label}", lambda d=d: os.chown(d, 65534, 65534), "EPERM"),
            (f"utime {label}", lambda d=d: os.utime(d, (0, 0)), "EPERM"),
            (f"utime now {label}", lambda d=d: os.utime(d), "EPERM"),
            (f"setxattr {label}", lambda d=d: os.setxattr(d, "user.x", b"1"), NO_XATTRS),
            (f"removexattr {label}", lambda d=d: os.removexattr(d, "user.x"), NO_XATTRS),
            # the kernel's own answers for a directory
            (f"truncate {label}", lambda d=d: os.truncate(d, 0), "EISDIR"),
            (f"open O_WRONLY {label}", lambda d=d: os.close(os.open(d, os.O_WRONLY)), "EISDIR"),
        ]
        if label == "/":
            ops.append(("rmdir /", lambda d=d: os.rmdir(d), "EBUSY"))  # the kernel's: a mountpoint
        else:
            ops += [
                (f"rmdir {label}", lambda d=d: os.rmdir(d), "EPERM"),
                (f"rename {label} to new.x", lambda d=d: os.rename(d, os.path.join(os.path.dirname(d), "new.x")),
                 "EPERM"),
                (f"unlink {label}", lambda d=d: os.unlink(d), "EISDIR"),  # the kernel's
            ]
    ops += [
        ("rename queries/1001 over queries/1002", lambda: os.rename(P(q), P("queries", "1002")), "EPERM"),
        ("mkdir queries/1002 (any id exists)", lambda: os.mkdir(P("queries", "1002")), "EEXIST"),
        ("rmdir queries/1002", lambda: os.rmdir(P("queries", "1002")), "EPERM"),
    ]
    files = [(q, n) for n in QUERY_FILES + ["execute", "last"]] + \
            [(e, n) for n in EXEC_FILES + ["cancel", "query"]]
    for parent, name in files:
        f = P(parent, name)
        label = f"{parent}/{name}"
        link = name in ("last", "query")
        writable = name in ("execute", "cancel")
        other = P(parent, "error" if name != "error" else ("latest.csv" if parent == q else "status"))
        ops += [
            (f"unlink {label}", lambda f=f: os.unlink(f), "EPERM"),
            (f"rename {label} to new.x", lambda f=f, parent=parent: os.rename(f, P(parent, "new.x")), "EPERM"),
            (f"rename {label} over a sibling", lambda f=f, other=other: os.rename(f, other), "EPERM"),
            (f"rename {label} to the other directory",
             lambda f=f, parent=parent: os.rename(f, P(q if parent == e else e, "new.x")), "EPERM"),
            (f"rename {label} out of the mount", lambda f=f: os.rename(f, "/tmp/execfs-bad-input.x"), "EXDEV"),
            (f"link {label}", lambda f=f, parent=parent: os.link(f, P(parent, "new.x"), follow_symlinks=False),
             "EPERM"),
            (f"lchown {label}", lambda f=f: os.lchown(f, 65534, 65534), "EPERM"),
            (f"lutime {label}", lambda f=f: os.utime(f, (0, 0), follow_symlinks=False),
             "ok" if writable else "EPERM"),  # touching execute: allowed, changes nothing
        ]
        if link:
            continue
        ro = "ok" if writable else "EACCES"
        ops += [
            (f"open O_WRONLY {label}", lambda f=f: os.close(os.open(f, os.O_WRONLY)), ro),
            (f"open O_WRONLY|O_APPEND {label}", lambda f=f: os.close(os.open(f, os.O_WRONLY | os.O_APPEND)), ro),
            (f"open O_WRONLY|O_TRUNC {label}", lambda f=f: os.close(os.open(f, os.O_WRONLY | os.O_TRUNC)), ro),
            (f"chmod {label}", lambda f=f: os.chmod(f, 0o777), "EPERM"),
            (f"chmod {label} to its own mode", lambda f=f: os.chmod(f, stat.S_IMODE(os.stat(f).st_mode)), "EPERM"),
            (f"chown {label}", lambda f=f: os.chown(f, 65534, 65534), "EPERM"),
            (f"truncate {label} to 0", lambda f=f: os.truncate(f, 0), "ok" if writable else "EPERM"),
            (f"truncate {label} to 5", lambda f=f: os.truncate(f, 5), "EPERM"),
            (f"utime {label}", lambda f=f: os.utime(f, (0, 0)), "ok" if writable else "EPERM"),
            (f"setxattr {label}", lambda f=f: os.setxattr(f, "user.x", b"1"), NO_XATTRS),
            (f"setxattr security. {label}", lambda f=f: os.setxattr(f, "security.x", b"1"), NO_XATTRS),
            (f"set a POSIX ACL on {label}",
             lambda f=f: os.setxattr(f, "system.posix_acl_access", b"\x02\x00\x00\x00"), NO_XATTRS),
        ]
        if name != "cancel":  # write-only: O_RDWR is refused whatever the tree's rules
            ops.append((f"open O_RDWR {label}", lambda f=f: os.close(os.open(f, os.O_RDWR)), ro))
    return ops


def test_nothing_in_the_tree_can_change(mnt, fake):
    q, e = settled_tree(mnt, fake)
    dirs = ["", "queries", "executions", q, e]
    snapshot(mnt, dirs)
    fake.reset()
    before = snapshot(mnt, dirs)
    assert api_requests(fake) == []  # the reads above are all answered locally
    ops = tree_changes(mnt, q, e)
    outcomes = {desc: name_of(errno_of(fn)) for desc, fn, _ in ops}
    assert outcomes == {desc: want for desc, _, want in ops}
    assert set(outcomes.values()) <= {"ok", "EPERM", "EACCES", NO_XATTRS, "EISDIR", "EBUSY", "EEXIST", "EXDEV"}
    assert snapshot(mnt, dirs) == before
    assert api_requests(fake) == []
    assert fake.executions()["1001"] == 1
    assert not os.path.lexists("/tmp/execfs-bad-input.x")


def test_a_new_name_that_could_be_an_execution_costs_its_lookup_only(mnt, fake):
    # the kernel looks a name up before mkdir/creat/symlink: in executions/ an
    # id-shaped name is asked about once (free), then refused
    fake.reset()
    d = mnt.p("executions", "newdir")
    assert errno_of(lambda: os.mkdir(d)) == errno.EPERM
    assert errno_of(lambda: os.symlink("x", d)) == errno.EPERM  # the 404 is remembered
    assert len(requests_for(fake, "status", "newdir")) == 1 and len(fake.log()) == 1
    assert os.listdir(mnt.p("executions")) == []


def test_coreutils_cannot_change_the_tree(mnt, fake):
    q, e = settled_tree(mnt, fake)
    dirs = ["", "queries", "executions", q, e]
    snapshot(mnt, dirs)
    fake.reset()
    before = snapshot(mnt, dirs)
    Q, E = mnt.p(q), mnt.p(e)
    refused = {
        ("rm", "-f", f"{Q}/latest.csv"): "Operation not permitted",
        ("rm", "-rf", Q): "Operation not permitted",
        ("rmdir", E): "Operation not permitted",
        ("mv", f"{Q}/latest.csv", f"{Q}/old.csv"): "Operation not permitted",
        ("mkdir", f"{Q}/sub.d"): "Operation not permitted",
        ("touch", f"{Q}/new.txt"): "Operation not permitted",
        ("touch", f"{E}/status"): "Permission denied",
        ("ln", "-s", "/etc/passwd", f"{Q}/passwd.x"): "Operation not permitted",
        ("ln", f"{Q}/latest.csv", f"{Q}/hard.x"): "Operation not permitted",
        ("chmod", "666", f"{E}/results.csv"): "Operation not permitted",
        ("chown", "nobody", f"{Q}/latest.csv"): "Operation not permitted",
        ("truncate", "-s", "0", f"{E}/results.csv"): "Permission denied",
        ("cp", "/etc/hostname", f"{Q}/latest.csv"): "Permission denied",
        ("cp", "/etc/hostname", f"{Q}/copy.x"): "Operation not permitted",
        ("mkfifo", f"{E}/fifo.x"): "Operation not permitted",
        ("sh", "-c", f"echo x > {E}/status"): "Permission denied",
        ("sh", "-c", f"echo x >> {Q}/error"): "Permission denied",
    }
    for cmd, message in refused.items():
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=20)
        assert out.returncode != 0 and message in out.stderr, (cmd, out.stderr)
    # the writable files: touch is a no-op, a redirection without data starts nothing
    for cmd in (["touch", f"{Q}/execute"], ["touch", f"{E}/cancel"], ["truncate", "-s", "0", f"{Q}/execute"]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, (cmd, out.stderr)
    assert snapshot(mnt, dirs) == before
    assert api_requests(fake) == []
    assert fake.executions()["1001"] == 1


# ---- 4. other users --------------------------------------------------------

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]

ERRNO_PROBE = """
import errno, os, sys
for op, path in zip(sys.argv[1::2], sys.argv[2::2]):
    try:
        {"stat": os.stat, "listdir": os.listdir, "read": lambda p: open(p, "rb").read(),
         "write": lambda p: os.write(os.open(p, os.O_WRONLY), b"\\n")}[op](path)
        print("ok")
    except OSError as e:
        print(errno.errorcode[e.errno])
"""


def as_nobody(*cmd):
    """Runs cmd as nobody; stdout as bytes, stderr as text."""
    out = subprocess.run(NOBODY + list(cmd), capture_output=True, timeout=30, cwd="/")
    out.stderr = out.stderr.decode(errors="replace")
    return out


def probe_as_nobody(pairs):
    args = [x for pair in pairs for x in pair]
    out = as_nobody("/usr/bin/python3", "-c", ERRNO_PROBE, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().split()


@pytest.fixture
def open_dir():
    """A directory every user may pass through (pytest's tmp_path is 0700 and
    would deny nobody before the mount does)."""
    d = tempfile.mkdtemp(prefix="execfs-bad-input-", dir="/tmp")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def mount_options(path):
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[1] == path:
                return fields[3].split(",")
    raise AssertionError(f"{path} not mounted")


def test_other_users_cannot_enter_without_allow_other(fake, open_dir):
    m = Mount(fake, open_dir)
    # control: nobody reaches the mountpoint itself before the mount
    assert as_nobody("stat", m.path).returncode == 0
    try:
        m.start()
        assert "allow_other" not in mount_options(m.path)
        eid = execute(m, 1001)
        q, e = m.p("queries", "1001"), m.p("executions", eid)
        root_csv = read_bytes(e + "/results.csv")
        read_bytes(q + "/latest.csv")
        fake.reset()
        pairs = [("stat", m.path), ("listdir", m.path), ("stat", q), ("listdir", q),
                 ("read", q + "/latest.csv"), ("read", e + "/results.csv"), ("read", e + "/status"),
                 ("stat", m.p("queries", "1002")), ("stat", m.p("executions", "01UNKNOWN")),
                 ("write", q + "/execute"), ("write", e + "/cancel")]
        assert probe_as_nobody(pairs) == ["EACCES"] * len(pairs)
        for cmd in (["stat", m.path], ["ls", q], ["cat", q + "/latest.csv"], ["cat", e + "/results.csv"],
                    ["sh", "-c", f"echo > {q}/execute"]):
            out = as_nobody(*cmd)
            assert out.returncode != 0 and "Permission denied" in out.stderr, (cmd, out)
        assert api_requests(fake) == []
        assert fake.executions()["1001"] == 1
        # the mounter can
        assert subprocess.run(["cat", e + "/results.csv"], capture_output=True, check=True).stdout == root_csv
        assert subprocess.run(["ls", q], capture_output=True, text=True, check=True).stdout.split() == [
            "error", "execute", "last", "latest.csv", "latest.json", "latest.ndjson", "stream"]
    finally:
        m.stop()


def test_with_allow_other_others_read_but_cannot_start_or_cancel_runs(fake, open_dir):
    m = Mount(fake, open_dir, options=["allow_other"])
    try:
        m.start()
        assert "allow_other" in mount_options(m.path)
        eid = execute(m, 1002)  # slow: still running while nobody tries to cancel it
        q, e = m.p("queries", "1002"), m.p("executions", eid)
        latest = read_bytes(m.p("queries", "1001", "latest.csv"))
        fake.reset()
        out = as_nobody("cat", m.p("queries", "1001", "latest.csv"))
        assert out.returncode == 0 and out.stdout == latest
        pairs = [("write", q + "/execute"), ("write", e + "/cancel"), ("write", q + "/latest.csv")]
        assert probe_as_nobody(pairs) == ["EACCES"] * len(pairs)
        out = as_nobody("sh", "-c", f"echo days=1 > {q}/execute")
        assert out.returncode != 0 and "Permission denied" in out.stderr
        assert [x for x in fake.log() if x["method"] in ("POST", "DELETE")] == []
        assert fake.executions()["1002"] == 1
    finally:
        m.stop()
