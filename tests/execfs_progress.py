"""A pytest plugin that says where a run is while it works: a line each time
it starts a test file, with the counts so far, and a line for each failure as
it happens. tests/run-all.sh loads it in each end-to-end pass, whose ordinary
output goes to a log printed at the end (a file that takes more than a minute
gets a "still" line a minute):

    python3 -m pytest -p execfs_progress --progress-fd=3 --progress-name=plain tests/ 3>&1

(tests/ on PYTHONPATH). Each line goes out in one write(2) of a few dozen bytes,
so two passes writing to the same terminal, pipe or file never mix within a
line. Without --progress-fd the plugin does nothing.
"""
import collections
import os
import time

import pytest

STILL_AFTER = 60  # seconds in one file before a line saying it is still there

def pytest_addoption(parser):
    group = parser.getgroup("execfs progress")
    group.addoption("--progress-fd", type=int, default=None, metavar="FD",
                    help="write one progress line per test file (and per failure) to this "
                         "inherited file descriptor")
    group.addoption("--progress-name", default="", metavar="NAME",
                    help="the name the progress lines start with, e.g. plain or asan")


def pytest_configure(config):
    fd = config.getoption("progress_fd")
    if fd is not None:
        config.pluginmanager.register(Progress(fd, config.getoption("progress_name")),
                                      "execfs-progress-reporter")


def _clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    def __init__(self, fd, name):
        self.fd = fd
        self.prefix = f"[{name}]".ljust(7) + " " if name else ""
        self.start = time.monotonic()
        self.files = []          # test files in the order they run
        self.tests = 0
        self.current = None
        self.said = self.start   # when the last file line went out
        self.outcome = {}        # nodeid -> passed | failed | skipped

    def say(self, text):
        if self.fd is None:
            return
        try:
            os.write(self.fd, f"{self.prefix}{text}\n".encode("utf-8", "replace"))
        except OSError:
            self.fd = None  # nobody listening any more: the tests go on regardless

    def counts(self):
        c = collections.Counter(self.outcome.values())
        text = f"{c['passed']} passed, {c['failed']} failed"
        if c["skipped"]:
            text += f", {c['skipped']} skipped"
        return text

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session):
        for item in session.items:
            path = item.nodeid.split("::", 1)[0]
            if path not in self.files:
                self.files.append(path)
        self.tests = len(session.items)
        self.say(f"{self.tests} test{'s' * (self.tests != 1)} in {len(self.files)} "
                 f"file{'s' * (len(self.files) != 1)}")

    def pytest_collectreport(self, report):
        if report.failed:
            self.say(f"ERROR collecting {report.nodeid or 'the tests'}")

    def pytest_runtest_logstart(self, nodeid, location):
        path = nodeid.split("::", 1)[0]
        now = time.monotonic()
        if path == self.current:
            if now - self.said < STILL_AFTER:
                return
            head = "still"  # a long file: a line a minute, at most
        else:
            self.current = path
            n = self.files.index(path) + 1 if path in self.files else "?"
            head = f"{n}/{len(self.files)}"
        self.said = now
        self.say(f"{head:<5} {os.path.basename(path):<26} ({self.counts()} so far; "
                 f"test {len(self.outcome) + 1}/{self.tests}, {_clock(now - self.start)})")

    def pytest_runtest_logreport(self, report):
        before = self.outcome.get(report.nodeid)
        if report.failed:
            if before != "failed":
                self.outcome[report.nodeid] = "failed"
                where = "" if report.when == "call" else f" (in its {report.when})"
                self.say(f"FAILED {report.nodeid}{where}")
        elif before is None and report.skipped:
            self.outcome[report.nodeid] = "skipped"
        elif before is None and report.when == "call" and report.passed:
            self.outcome[report.nodeid] = "passed"

    def pytest_sessionfinish(self, session, exitstatus):
        state = "interrupted" if exitstatus == pytest.ExitCode.INTERRUPTED else "done"
        self.say(f"{state}: {self.counts()} in {_clock(time.monotonic() - self.start)}")
