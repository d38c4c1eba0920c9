"""Saved runs for tests: small, fixed run documents in the shape the sweep writes, and views of them.

Shared by the tests of the view, the report, the charts, the summary, repeats and resume, so that every reader is
tested against the same runs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from runner import files, store
from runner.config import load_config
from runner.view import RunView

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SYNC, ASYNC = "flask-gunicorn", "fastapi-uvicorn"
USERS = [5, 50]


def latency(p50: float, p95: float, requests: int = 100) -> dict[str, Any]:
    return {"requests": requests, "failures": 0, "min_ms": p50 * 0.5, "mean_ms": p50 * 1.1, "p50_ms": p50,
            "p90_ms": p95 * 0.9, "p95_ms": p95, "p99_ms": p95 * 1.2, "max_ms": p95 * 1.5}  # fmt: skip


def step(server: str, users: int, *, rps: float, p50: float, p95: float, **extra: Any) -> dict[str, Any]:
    """A step record in the shape runner.sweep.measure_step produces."""
    sync = server == SYNC
    record: dict[str, Any] = {
        "server": server,
        "kind": "sync" if sync else "async",
        "server_type": "gunicorn" if sync else "uvicorn",
        "workers": 3 if sync else 1,
        "users": users,
        "status": "ok",
        "error": None,
        "files": f"raw/{server}/u{users:04d}",
        "figures": {
            "window_s": 10.0,
            "latency": latency(p50, p95),
            "endpoints": {"page": latency(p50 * 1.2, p95 * 1.2, 80), "short": latency(p50 * 0.3, p95 * 0.3, 20)},
            "completed_in_window": int(rps * 10),
            "failed_in_window": 0,
            "drained": 1,
            "unfinished": 0,
            "unfinished_oldest_ms": 0.0,
            "stopped_after_window": 0,
            "rps": rps,
            "client_cpu_pct": 12.0,
            "raw_vs_json_gap": 0,
            "notes": [],
        },
        "server_cpu_pct": 40.0,
        "server_rss_mb": 120.0,
        "server_pss_mb": 80.0,
        "saturated": "",
    }
    record.update(extra)
    return record


def config() -> dict[str, Any]:
    return {
        "name": "tiny",
        "description": "A synthetic run for tests.",
        "source": "/somewhere/scenarios/tiny.toml",
        "source_sha256": "0123456789abcdef" * 4,
        "load": {
            "users": USERS,
            "warmup_s": 1,
            "measure_s": 10,
            "drain_s": 5,
            "think_time_s": [1.0, 3.0],
            "request_timeout_s": 30,
            "page_weight": 4,
            "short_weight": 1,
        },
        "workload": {
            "user_lookup_ms": 20,
            "listing_ms": 80,
            "app_work_ms": 5,
            "listing_rows": 20,
            "short_query_ms": 10,
        },
        "database": {"capacity": 0, "jitter": 0.1, "seed": 1},
        "servers": [
            {"name": SYNC, "server": "gunicorn", "workers": 3},
            {"name": ASYNC, "server": "uvicorn", "workers": 1},
        ],
        "run": {"pin_cpus": True, "server_cores": 1, "startup_timeout_s": 30.0, "results_dir": "results"},
        "overrides": [],
    }


METADATA = {
    "date": "2026-01-02T03:04:05+00:00",
    "cpu_model": "Test CPU",
    "cpu_count": 2,
    "cpu_pinning": "server pinned to core(s) [1], Locust and the harness to core(s) [0]",
    "memory_gb": 8.0,
    "os": "Linux",
    "python": "3.11.7",
    "packages": {"flask": "3.1.3", "locust": "2.47.0"},
    "git": {"commit": "abc123", "dirty": False},
}


def complete_run() -> dict[str, Any]:
    """Both servers at 5 and 50 users; at 50 the async server does twice the sync server's throughput."""
    run = store.new_run_document(config(), copy.deepcopy(METADATA))
    run["steps"] = [
        step(SYNC, 5, rps=1.5, p50=110.0, p95=130.0),
        step(ASYNC, 5, rps=1.5, p50=105.0, p95=120.0),
        step(SYNC, 50, rps=5.0, p50=900.0, p95=2500.0),
        step(ASYNC, 50, rps=10.0, p50=110.0, p95=150.0),
    ]
    run["status"] = "complete"
    run["missing_steps"] = []
    return run


def save(tmp_path: Path, run: dict[str, Any]) -> Path:
    run_dir = tmp_path / "run"
    files.write_json(run_dir / store.RUN_FILE, run)
    return run_dir


def view_of(run: dict[str, Any], path: Path | None = None) -> RunView:
    """A view of a run document that need not be on disk."""
    return RunView.from_doc(run, path or Path("/nonexistent-run"))


def unfinished_run(tmp_path: Path, scenario: Path, status: str = "interrupted") -> Path:
    """A run folder of ``scenario`` with no step measured yet, in the given status."""
    config = load_config(str(scenario))
    run_dir = tmp_path / "results" / "20260101T000000Z-test"
    run_dir.mkdir(parents=True)
    doc = store.new_run_document(config.to_dict(), {"date": "2026-01-01"})
    doc["status"] = status
    files.write_json(run_dir / store.RUN_FILE, doc)
    return run_dir


def repeated_run(figures: dict[tuple[str, int], list[tuple[float, float, float]]] | None = None) -> dict[str, Any]:
    """A complete run with three repeats per step; ``figures`` gives (rps, p50, p95) per repeat where it matters,
    every other step repeating the same figures three times."""
    base = complete_run()
    base["config"]["load"]["repeats"] = 3
    figures = figures or {}
    steps = []
    for users in USERS:
        for repeat in (1, 2, 3):
            for record in base["steps"]:
                if record["users"] != users:
                    continue
                key = (record["server"], users)
                f = record["figures"]
                rps, p50, p95 = figures[key][repeat - 1] if key in figures else (f["rps"], 100.0, 120.0)
                suffix = f"-r{repeat}" if repeat > 1 else ""
                steps.append(
                    step(record["server"], users, rps=rps, p50=p50, p95=p95, repeat=repeat,
                         files=f"raw/{record['server']}/u{users:04d}{suffix}")
                )  # fmt: skip
    base["steps"] = steps
    return base


def table_rows_match_headers(text: str) -> None:
    """Every markdown table row has as many cells as its header (as tests/test_report_columns.py checks)."""
    header_cells = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header_cells = None
            continue
        cells = line.count("|") - 1
        header_cells = cells if header_cells is None else header_cells
        assert cells == header_cells, line
