"""The fast suite's rule, enforced: a test not marked integration that starts a process fails, naming itself and
the command, even when the code under test swallows the refusal or a session fixture starts it.

The rule is checked on a small suite run inside this process with tests/conftest.py as its conftest (pytester),
so that nothing here starts a process either.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

SUITE = """
import os
import subprocess

import pytest

BEFORE = subprocess.Popen._execute_child  # as collection left it: the rule applies while a test runs


def test_runs_a_program():
    subprocess.run(["echo", "hello world"], check=False)


def test_swallows_the_refusal():
    try:
        subprocess.run(["true"], check=False)
    except BaseException:
        pass


def test_forks():
    os.fork()


def test_runs_a_shell_command():
    os.system("true")


@pytest.fixture(scope="session")
def server():
    subprocess.run(["server", "--port", "1"], check=False)


def test_uses_a_session_fixture_that_starts_a_server(server):
    pass


def test_that_starts_nothing_is_guarded():
    assert subprocess.Popen._execute_child is not BEFORE


@pytest.mark.integration
def test_marked_integration_is_left_alone():
    assert subprocess.Popen._execute_child is BEFORE
"""


@pytest.fixture
def outcome(pytester: pytest.Pytester) -> pytest.RunResult:
    conftest = Path(__file__).with_name("conftest.py").read_text(encoding="utf-8")
    pytester.makeconftest(conftest)
    pytester.makeini("[pytest]\nmarkers =\n    integration: starts processes\n")
    pytester.makepyfile(test_suite=SUITE)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q")


def test_only_the_tests_that_start_nothing_pass(outcome: pytest.RunResult) -> None:
    outcome.assert_outcomes(passed=2, failed=4, errors=1)


def test_each_refusal_names_the_test_and_the_command(outcome: pytest.RunResult) -> None:
    outcome.stdout.fnmatch_lines_random(
        [
            "*test_suite.py::test_runs_a_program is not marked integration but tried to start a process "
            "(subprocess.Popen): echo 'hello world'",
            "*test_suite.py::test_forks is not marked integration but tried to start a process (os.fork): "
            "a copy of the test process",
            "*test_suite.py::test_runs_a_shell_command is not marked integration but tried to start a process "
            "(os.system): true",
            "*`make test-fast` starts none: replace the call with monkeypatch, or mark the test "
            "@pytest.mark.integration.",
        ]
    )


def test_a_swallowed_refusal_still_fails_the_test(outcome: pytest.RunResult) -> None:
    outcome.stdout.fnmatch_lines(
        ["*test_suite.py::test_swallows_the_refusal tried to start a process and carried on: true"]
    )


def test_a_session_fixture_cannot_start_a_server_for_a_fast_test(outcome: pytest.RunResult) -> None:
    outcome.stdout.fnmatch_lines(
        ["*test_uses_a_session_fixture_that_starts_a_server is not marked integration but tried to start a process "
         "(subprocess.Popen): server --port 1"]
    )  # fmt: skip
