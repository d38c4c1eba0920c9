"""What a run records about the machine and the software it measured (the README's *run.json*: date, CPU model
and count, OS, Python, exact package versions, git commit).

``git`` and ``uname`` (behind :func:`platform.platform`) are programs; they are replaced here, so these tests
start nothing and describe the same fixed machine wherever they run.
"""

from __future__ import annotations

import io
import platform
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import metadata as importlib_metadata
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from runner import environment
from runner.config import ROOT

CLEAN_CHECKOUT = {"commit": "0123abc", "dirty": False}

# --- git_commit ------------------------------------------------------------------------------------------------------

Git = Callable[..., subprocess.CompletedProcess[str]]


def _git(answers: dict[str, tuple[int, str] | BaseException], calls: list[list[str]]) -> Git:
    """A stand-in for subprocess.run that answers each git subcommand as given, or raises."""

    def run(args: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        assert options["cwd"] == ROOT  # the checkout measured, whatever the current folder
        answer = answers[args[1]]
        if isinstance(answer, BaseException):
            raise answer
        code, out = answer
        return subprocess.CompletedProcess(args, code, out, "")

    return run


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"rev-parse": (0, "0123abc\n"), "status": (0, "")}, {"commit": "0123abc", "dirty": False}),
        ({"rev-parse": (0, "0123abc\n"), "status": (0, " M runner/cli.py\n")}, {"commit": "0123abc", "dirty": True}),
        # Not a checkout (a copy of the files, an unpacked archive): git answers 128 to both.
        ({"rev-parse": (128, ""), "status": (128, "")}, {"commit": None, "dirty": None}),
        ({"rev-parse": (0, "0123abc\n"), "status": (1, "")}, {"commit": "0123abc", "dirty": None}),
    ],
)
def test_git_commit_records_the_commit_and_whether_tracked_files_changed(
    monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any], expected: dict[str, Any]
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", _git(answers, calls))
    assert environment.git_commit() == expected
    assert calls == [["git", "rev-parse", "HEAD"], ["git", "status", "--porcelain", "--untracked-files=no"]]


@pytest.mark.parametrize(
    "failure",
    [
        FileNotFoundError(2, "No such file or directory", "git"),  # git is not installed
        PermissionError(13, "Permission denied", "git"),
        subprocess.TimeoutExpired(["git"], 10),  # a hung git (a network file system) does not hang the run
    ],
)
def test_git_commit_without_a_working_git_records_nothing_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", _git({"rev-parse": failure, "status": failure}, calls))
    assert environment.git_commit() == {"commit": None, "dirty": None}
    assert len(calls) == 2


# --- the machine -----------------------------------------------------------------------------------------------------


def test_cpu_model_is_read_from_proc_cpuinfo(monkeypatch: pytest.MonkeyPatch) -> None:
    cpuinfo = "processor\t: 0\nvendor_id\t: Test\nmodel name\t: Test CPU @ 2.0GHz  \nflags\t: fpu\n"
    monkeypatch.setattr(environment, "open", lambda *a, **k: io.StringIO(cpuinfo), raising=False)
    assert environment.cpu_model() == "Test CPU @ 2.0GHz"


@pytest.mark.parametrize(("processor", "expected"), [("x86_64", "x86_64"), ("", "unknown")])
def test_cpu_model_without_proc_falls_back_to_the_platform(
    monkeypatch: pytest.MonkeyPatch, processor: str, expected: str
) -> None:
    def no_proc(*args: object, **named: object) -> io.StringIO:
        raise FileNotFoundError("/proc/cpuinfo")

    monkeypatch.setattr(environment, "open", no_proc, raising=False)
    monkeypatch.setattr(platform, "processor", lambda: processor)
    assert environment.cpu_model() == expected


def test_package_versions_name_every_package_and_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "PACKAGES", ("flask", "surely-not-an-installed-package"))
    assert environment.package_versions() == {
        "flask": importlib_metadata.version("flask"),
        "surely-not-an-installed-package": "not installed",
    }


def test_every_package_that_decides_a_result_is_listed() -> None:
    """Both servers, both frameworks, their event loop and HTTP parser, and the client."""
    for name in ("flask", "gunicorn", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "locust", "gevent"):
        assert name in environment.PACKAGES


# --- describe --------------------------------------------------------------------------------------------------------


@pytest.fixture
def fixed_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine that needs no program to be described: git and uname are replaced."""
    monkeypatch.setattr(environment, "git_commit", lambda: dict(CLEAN_CHECKOUT))
    monkeypatch.setattr(platform, "platform", lambda: "Linux-6.1-test")
    monkeypatch.setattr(environment, "cpu_model", lambda: "Test CPU")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(total=7.75 * 2**30))
    monkeypatch.setattr(sys, "argv", ["runner", "quick", "--repeats", "2"])


def test_describe_records_what_the_readme_says_run_json_records(fixed_machine: None) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    described = environment.describe("server pinned to core(s) [1]")
    assert set(described) == {"date", "cpu_model", "cpu_count", "cpus_available", "cpu_pinning", "memory_gb", "os",
                              "python", "python_implementation", "packages", "git", "command"}  # fmt: skip
    date = datetime.fromisoformat(described["date"])
    assert date.tzinfo is not None
    assert before <= date <= datetime.now(UTC) + timedelta(seconds=1)
    assert described["cpu_model"] == "Test CPU"
    assert described["cpu_count"] >= 1
    assert described["cpus_available"] == sorted(described["cpus_available"])
    assert len(described["cpus_available"]) <= described["cpu_count"]
    assert described["cpu_pinning"] == "server pinned to core(s) [1]"
    assert described["memory_gb"] == 7.8  # one decimal
    assert described["os"] == "Linux-6.1-test"
    assert described["python"] == f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    assert described["python_implementation"] == "CPython"
    assert set(described["packages"]) == set(environment.PACKAGES)
    assert described["packages"]["gunicorn"] == importlib_metadata.version("gunicorn")
    assert described["git"] == CLEAN_CHECKOUT
    assert described["command"] == ["runner", "quick", "--repeats", "2"]
