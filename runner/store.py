"""Read and write results: one folder per run, self-describing, never overwritten.

``run.json`` carries a format name and version, the environment, the exact configuration and every figure per
step, and is rewritten (atomically) after each step, so a run stopped half-way keeps what it measured. The
loader refuses a format version it does not know rather than guess at its meaning.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from runner.files import write_atomically

FORMAT = "sync-async-bench/run"
FORMAT_VERSION = 1
RUN_FILE = "run.json"
# The experiments run alone (``make timeline``, ``make burst``, ``make slow-clients``) write one file each,
# versioned like run.json.
TIMELINE_FILE = "timeline.json"
TIMELINE_FORMAT = "sync-async-bench/timeline"
BURST_FILE = "burst.json"
BURST_FORMAT = "sync-async-bench/burst"
SLOW_CLIENTS_FILE = "slow_clients.json"
SLOW_CLIENTS_FORMAT = "sync-async-bench/slow-clients"
OPEN_FILE = "open.json"
OPEN_FORMAT = "sync-async-bench/open"
CAPACITY_FILE = "capacity.json"
CAPACITY_FORMAT = "sync-async-bench/capacity"
EXPERIMENT_VERSION = 1
# The files Locust writes for the runner (loadtests/locustfile.py): the window and the client's CPU, and the live
# counts the progress line reads.
WINDOW_FORMAT = "sync-async-bench/window"
PROGRESS_FORMAT = "sync-async-bench/progress"
LOCUST_FILES_VERSION = 1
# Charts go here, under a run's (or an experiment's) folder.
CHARTS_DIR = "charts"
SUMMARY_FILE = "summary.csv"

# The columns only an open row fills (a closed row leaves them empty). An open row's p50..max are from the scheduled
# start; sent_* are the same requests from the actual send.
OPEN_SUMMARY_COLUMNS = (
    "rate",
    "offered_rps",
    "dropped",
    "lost_pct",
    "p99_all_ms",
    "sent_p50_ms",
    "sent_p95_ms",
    "sent_p99_ms",
    "generator_p99_ms",
    "capacity_rps",
)
SUMMARY_COLUMNS = (
    "server",
    "kind",
    "workers",
    "users",
    "status",
    "requests",
    "failures",
    "unfinished",
    "rps",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "mean_ms",
    "min_ms",
    "page_p50_ms",
    "page_p95_ms",
    "short_p50_ms",
    "short_p95_ms",
    "client_cpu_pct",
    "server_cpu_pct",
    "server_rss_mb",
    "proxy_cpu_pct",
    "upstream_cpu_pct",
    "saturated",
    "repeats",
    "rps_min",
    "rps_max",
    "spread_pct",
    "model_rps",
    "model_mean_ms",
    "efficiency",
    "model_bound",
    "mean_vs_model",
    "little_error_pct",
    "cpu_ms_per_request",
    "handler_mean_ms",
    "outside_mean_ms",
    "pool_mean_ms",
    "pool_waited_pct",
    # "closed" (a user level of the sweep) or "open" (a rate of open arrivals: runner/open_loop.py).
    "arrival",
    *OPEN_SUMMARY_COLUMNS,
)


def is_ok(record: Mapping[str, Any] | None) -> bool:
    """A step that was measured (as opposed to failed, or never reached)."""
    return record is not None and record.get("status") == "ok"


class ResultsError(Exception):
    """A results file is missing, corrupt or of an unknown format; the message names the file."""


def new_run_dir(results_root: Path, scenario: str, now: datetime | None = None) -> Path:
    """A new folder ``<UTC timestamp>-<scenario>``; if that name is taken, a numbered one. Never reuses a folder."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    results_root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        name = f"{stamp}-{scenario}" if attempt == 1 else f"{stamp}-{scenario}-{attempt}"
        candidate = results_root / name
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise ResultsError(f"could not create a new run folder under {results_root}")


def point_latest(results_root: Path, run_dir: Path) -> None:
    """Make ``results/latest`` a relative symbolic link to the run, replaced atomically."""
    link = results_root / "latest"
    tmp = results_root / f".latest.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(run_dir, results_root))
    if link.exists() and not link.is_symlink():
        tmp.unlink()
        raise ResultsError(f"{link} exists and is not a symbolic link; not replacing it")
    os.replace(tmp, link)


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run's lock while writing it: two processes resuming one run would interleave their steps."""
    with (run_dir / ".lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResultsError(f"{run_dir} is being written by another benchmark process; wait for it to end") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def new_run_document(config: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "status": "running",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "finished": None,
        "metadata": metadata,
        "config": config,
        "steps": [],
    }


def load_document(path: Path, file_format: str, version: int, what: str = "file") -> dict[str, Any]:
    """Read one of the JSON files the harness writes (``run.json``, ``timeline.json``, ``burst.json``, ...);
    refuse what is not of ``file_format``, or a format version this code does not know, naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path} does not exist") from None
    except OSError as error:
        raise ResultsError(f"{path} cannot be read: {error}") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ResultsError(f"{path} is corrupt or truncated (not valid JSON: {error})") from None
    if not isinstance(data, dict) or data.get("format") != file_format:
        raise ResultsError(f"{path} is not a {what} of this tool (format is not {file_format!r})")
    found = data.get("format_version")
    if found != version:
        raise ResultsError(
            f"{path} has format version {found!r}; this version of the tool reads version {version} only"
        )
    return data


def stamp(data: Mapping[str, Any], file_format: str, version: int) -> dict[str, Any]:
    """``data`` with its format and version first, as every JSON file the harness writes carries them."""
    return {"format": file_format, "format_version": version, **data}


def load_run(run_dir: Path) -> dict[str, Any]:
    """Read a run's ``run.json``; refuse what is not one, or a format version this code does not know."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE if run_dir.is_dir() else run_dir
    if not path.exists():
        raise ResultsError(f"{path} does not exist: is {run_dir} a run folder?")
    data = load_document(path, FORMAT, FORMAT_VERSION, "run file")
    for key in ("metadata", "config", "steps", "status"):
        if key not in data:
            raise ResultsError(f"{path} is missing its '{key}' section")
    _check_shape(data, path)
    return data


def _check_shape(data: Mapping[str, Any], path: Path) -> None:
    """Enough structure for charts and report to be drawn: a damaged file is named here, not in a traceback."""
    config = data["config"]
    try:
        users = config["load"]["users"]
        servers = [(s["name"], s["server"], int(s["workers"])) for s in config["servers"]]
        ok = isinstance(users, list) and all(isinstance(n, int) for n in users) and bool(servers)
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise ResultsError(f"{path}: its 'config' section is damaged (load.users or servers unreadable)")
    if not isinstance(data["steps"], list):
        raise ResultsError(f"{path}: 'steps' is not a list")
    for index, step in enumerate(data["steps"]):
        problem = _step_problem(step)
        if problem:
            raise ResultsError(f"{path}: steps[{index}] is damaged: {problem}")


def _step_problem(step: Any) -> str | None:  # noqa: PLR0911 (one check per field)
    if not isinstance(step, dict):
        return "not an object"
    for key in ("server", "kind", "users", "status", "workers"):
        if key not in step:
            return f"no '{key}'"
    if step["status"] != "ok":
        return None
    figures = step.get("figures")
    if not isinstance(figures, dict):
        return "a measured step without figures"
    for key in ("latency", "endpoints", "rps"):
        if key not in figures:
            return f"figures has no '{key}'"
    if not isinstance(figures["latency"], dict) or not isinstance(figures["endpoints"], dict):
        return "latency or endpoints is not an object"
    return None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def write_summary(run_dir: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """``summary.csv``: one row per (server, users), the columns of SUMMARY_COLUMNS (see ``RunView.summary_rows``)."""

    def write(handle: TextIO) -> None:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in SUMMARY_COLUMNS})

    write_atomically(run_dir / SUMMARY_FILE, write)
