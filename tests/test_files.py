"""The one writer and the one log tail: nothing half-written, nothing overwritten, NaN stored as null."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import pytest

from runner.files import jsonable, log_tail, write_atomically, write_json, write_new


class WriteFailed(Exception):
    """Raised by a writer half-way through, as a full disk or an interrupted run would."""


def _writing(text: str) -> Callable[[TextIO], object]:
    return lambda handle: handle.write(text)


def _half_then_fail(handle: TextIO) -> None:
    handle.write("half of the new ")
    raise WriteFailed


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, whatever the test process was started with."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# --- write_atomically ------------------------------------------------------------------------------------------------


def test_write_atomically_writes_the_file_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    write_atomically(target, lambda handle: handle.write("new\n"))
    assert target.read_text(encoding="utf-8") == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_write_atomically_replaces_an_earlier_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("old content that is longer than the new\n", encoding="utf-8")
    write_atomically(target, lambda handle: handle.write("new\n"))
    assert target.read_text(encoding="utf-8") == "new\n"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("old\n", encoding="utf-8")
    with pytest.raises(WriteFailed):
        write_atomically(target, _half_then_fail)
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_a_failed_first_write_leaves_no_file_at_all(tmp_path: Path) -> None:
    with pytest.raises(WriteFailed):
        write_atomically(tmp_path / "run.json", _half_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_write_atomically_makes_the_folder_and_a_shareable_file(tmp_path: Path, umask_022: None) -> None:
    """mkstemp makes a private (0600) file; results are meant to be shared, so the file gets the umask's mode."""
    target = tmp_path / "a" / "b" / "summary.csv"
    write_atomically(str(target), lambda handle: handle.write("x\n"))
    assert target.read_text(encoding="utf-8") == "x\n"
    assert target.stat().st_mode & 0o777 == 0o644


def test_write_atomically_keeps_line_endings_as_written(tmp_path: Path) -> None:
    target = tmp_path / "rows.csv"
    write_atomically(target, lambda handle: handle.write("a\r\nb\n"))
    assert target.read_bytes() == b"a\r\nb\n"


# --- write_new -------------------------------------------------------------------------------------------------------


def test_write_new_never_overwrites_and_numbers_from_2(tmp_path: Path) -> None:
    written = [write_new(tmp_path, "compare", ".md", _writing(f"{n}\n")) for n in range(3)]
    assert [p.name for p in written] == ["compare.md", "compare-2.md", "compare-3.md"]
    assert [p.read_text(encoding="utf-8") for p in written] == ["0\n", "1\n", "2\n"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare-2.md", "compare-3.md", "compare.md"]


def test_write_new_keeps_a_file_that_was_there_before(tmp_path: Path) -> None:
    (tmp_path / "compare.md").write_text("someone's\n", encoding="utf-8")
    written = write_new(tmp_path, "compare", ".md", lambda handle: handle.write("mine\n"))
    assert written == tmp_path / "compare-2.md"
    assert (tmp_path / "compare.md").read_text(encoding="utf-8") == "someone's\n"
    assert written.read_text(encoding="utf-8") == "mine\n"


def test_write_new_fills_the_first_free_number(tmp_path: Path) -> None:
    for name in ("compare.md", "compare-2.md", "compare-4.md"):
        (tmp_path / name).write_text("taken\n", encoding="utf-8")
    assert write_new(tmp_path, "compare", ".md", lambda handle: handle.write("new\n")).name == "compare-3.md"


def test_a_failed_write_new_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(WriteFailed):
        write_new(tmp_path, "compare", ".md", _half_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_write_new_gives_a_shareable_file(tmp_path: Path, umask_022: None) -> None:
    written = write_new(tmp_path, "compare", ".json", lambda handle: handle.write("{}\n"))
    assert written.stat().st_mode & 0o777 == 0o644


# --- jsonable and write_json -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_figure_that_is_not_finite_becomes_null(value: float) -> None:
    assert jsonable(value) is None


def test_jsonable_reaches_into_mappings_lists_and_tuples() -> None:
    data = {"p95_ms": math.nan, "steps": [{"rps": math.inf}, (1.5, -math.inf)], 3: "three"}
    assert jsonable(data) == {"p95_ms": None, "steps": [{"rps": None}, [1.5, None]], "3": "three"}


@pytest.mark.parametrize("value", [0, -1, 1.5, 0.0, True, False, None, "nan", "text"])
def test_jsonable_leaves_everything_else_as_it_is(value: object) -> None:
    assert jsonable(value) == value
    assert type(jsonable(value)) is type(value)


def test_write_json_stores_nan_as_null_indented_with_a_final_newline(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    write_json(target, {"a": math.nan, "b": [1, math.inf]})
    text = target.read_text(encoding="utf-8")
    assert text == '{\n  "a": null,\n  "b": [\n    1,\n    null\n  ]\n}\n'
    assert json.loads(text) == {"a": None, "b": [1, None]}


def test_write_json_refuses_what_is_not_json_and_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("{}\n", encoding="utf-8")
    with pytest.raises(TypeError):
        write_json(target, {"path": Path("/x")})
    assert target.read_text(encoding="utf-8") == "{}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


# --- log_tail --------------------------------------------------------------------------------------------------------


def test_log_tail_says_when_there_is_no_log(tmp_path: Path) -> None:
    missing = tmp_path / "server.log"
    assert log_tail(missing) == f"(no log at {missing})"


@pytest.mark.parametrize("text", ["", "\n\n", "   \n"])
def test_log_tail_says_when_the_log_is_empty(tmp_path: Path, text: str) -> None:
    log = tmp_path / "server.log"
    log.write_text(text, encoding="utf-8")
    assert log_tail(log) == f"({log} is empty)"


def test_log_tail_gives_the_last_lines_headed_by_the_path(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {n}\n" for n in range(1, 31)) + "\n", encoding="utf-8")
    assert log_tail(log, lines=3) == f"Last lines of {log}:\nline 28\nline 29\nline 30"
    assert log_tail(log).splitlines()[1:] == [f"line {n}" for n in range(6, 31)]  # 25 by default


def test_log_tail_of_a_short_log_is_all_of_it(tmp_path: Path) -> None:
    log = tmp_path / "locust.log"
    log.write_text("only line\n", encoding="utf-8")
    assert log_tail(log) == f"Last lines of {log}:\nonly line"


def test_log_tail_survives_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_bytes(b"ok\n\xff\xfe broken\n")
    assert log_tail(log) == f"Last lines of {log}:\nok\n\ufffd\ufffd broken"


def test_log_tail_of_a_folder_says_there_is_no_log(tmp_path: Path) -> None:
    assert log_tail(tmp_path) == f"(no log at {tmp_path})"
