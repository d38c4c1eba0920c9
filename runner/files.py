"""Writing files so that nothing measured is ever half-written or overwritten, and reading the end of a log.

Every file the harness writes goes through here: :func:`write_atomically` for a file that is rewritten as a run
goes on (a reader sees the old file or the new one, never half of one), :func:`write_new` for one that must never
replace an earlier one (a comparison), and :func:`log_tail` for the lines of a log an error message shows. The
locustfile writes its raw files with the same function, so the rule holds for the client's files too.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO


def _private_temp(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path``, with the mode an ordinary new file would get: mkstemp makes it private
    (0600), and results are meant to be shared."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return fd, tmp


def _fill(fd: int, write: Callable[[TextIO], object]) -> None:
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def write_atomically(path: Path | str, write: Callable[[TextIO], object]) -> None:
    """Write to a temporary file beside ``path`` and rename it into place: readers see the old file or the new
    one, never half of one."""
    path = Path(path)
    fd, tmp = _private_temp(path)
    try:
        _fill(fd, write)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_new(folder: Path, stem: str, suffix: str, write: Callable[[TextIO], object]) -> Path:
    """Write ``<stem><suffix>``, or ``<stem>-2<suffix>`` and so on if taken, and return the path written: an
    earlier file is never replaced. The content is written aside and hard-linked into place, because a link,
    unlike a rename, fails rather than replace an existing file, and a reader never sees half a file."""
    fd, tmp = _private_temp(folder / f"{stem}{suffix}")
    try:
        _fill(fd, write)
        for attempt in range(1, 1000):
            target = folder / (f"{stem}{suffix}" if attempt == 1 else f"{stem}-{attempt}{suffix}")
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            return target
        raise OSError(f"no free file name for {stem}{suffix} in {folder}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def jsonable(value: Any) -> Any:
    """NaN is not JSON; an absent figure is stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def write_json(path: Path | str, data: Any) -> None:
    """``data`` as indented JSON, atomically; NaN becomes null."""
    text = json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n"
    write_atomically(path, lambda handle: handle.write(text))


def log_tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log, headed by its path, for an error message; says so when there is no log."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.strip().splitlines()[-lines:]
    return f"Last lines of {path}:\n" + "\n".join(tail) if tail else f"({path} is empty)"
