"""Saved runs for tests: small, fixed run documents in the shape the sweep writes, and views of them.

Shared by the tests of the view, the report, the charts, the summary, repeats and resume, so that every reader is
tested against the same runs.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner import files, store
from runner.config import load_config
from runner.stats import step_figures
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


def read_summary(run_dir: Path) -> list[dict[str, str]]:
    """The rows of a folder's summary.csv, as text, as a reader of the file sees them."""
    with (run_dir / store.SUMMARY_FILE).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


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


def probe(label: str, path: str, sent: float, received: float, handler_ms: float = 1.0) -> dict[str, Any]:
    """One request of the timeline, as runner.timeline.Probe is saved (epoch seconds, milliseconds)."""
    return {"label": label, "path": path, "status": 200, "sent": sent, "received": received,
            "server_start": sent + 0.001, "handler_ms": handler_ms, "db_ms": handler_ms * 0.8,
            "app_ms": handler_ms * 0.1}  # fmt: skip


def timeline_round(kind: str, t0: float = 1_000_000.0, short_s: float | None = None) -> list[dict[str, Any]]:
    """The three requests sent together, once: on sync the short one waits for both pages, on async it does not."""
    if short_s is None:
        short_s = 0.25 if kind == "sync" else 0.015
    return [
        probe("page 1", "/page", t0, t0 + 0.11, 105.0),
        probe("page 2", "/page", t0 + 0.002, t0 + (0.22 if kind == "sync" else 0.112), 105.0),
        probe("short", "/short", t0 + 0.004, t0 + short_s, 10.0),
    ]


def timeline_data(rounds: int = 3) -> dict[str, Any]:
    """The timeline as runner.timeline.measure returns it (runs saved before the rename say "burst" for
    "probes"); round r's short request takes r ms longer than round 0's, so the median round is rounds // 2."""
    probes = [{"label": "page 1", "path": "/page", "delay_ms": 0.0}, {"label": "page 2", "path": "/page",
              "delay_ms": 2.0}, {"label": "short", "path": "/short", "delay_ms": 4.0}]  # fmt: skip
    servers = {}
    for name, kind in ((f"{SYNC}-1", "sync"), (f"{ASYNC}-1", "async")):
        base = 0.25 if kind == "sync" else 0.015
        seen = [timeline_round(kind, 1_000_000.0 + r, base + r / 1000) for r in range(rounds)]
        servers[name] = {"kind": kind, "workers": 1, "rounds": seen}
    return {"probes": probes, "servers": servers, "workload": config()["workload"]}


BURST_STAGES = [(2, 1.0), (20, 2.0), (2, 2.0)]


def burst_second(t: int, p50: float, requests: int = 10) -> dict[str, Any]:
    """One second of the burst over time, as runner.burst.per_second gives it."""
    return {"t": t, "requests": requests, "failures": 0, "p50_ms": p50, "p95_ms": float("nan"), "max_ms": p50 * 1.5,
            "completed": requests, "page_requests": requests - 2, "page_p50_ms": p50 * 1.1,
            "page_p95_ms": float("nan")}  # fmt: skip


def burst_data() -> dict[str, Any]:
    """The burst over time as runner.burst.measure returns it (tests/test_burst.py checks the shape against
    runner.burst.summarise): both servers through 2, 20 and 2 users; the sync server's pages queue while the
    crowd is there, the async server's do not."""
    t0 = 1_000_000.0
    servers: dict[str, Any] = {}
    for name, kind in ((SYNC, "sync"), (ASYNC, "async")):
        crowd = 900.0 if kind == "sync" else 110.0
        p50s = [110.0, crowd, crowd, 110.0, 110.0]
        stages = []
        begin = 0.0
        for (users, length), p50 in zip(BURST_STAGES, (110.0, crowd, 110.0), strict=True):
            stages.append({"requests": int(10 * length), "failures": 0, "p50_ms": p50, "p95_ms": float("nan"),
                           "max_ms": p50 * 1.5, "users": users, "start_s": begin, "end_s": begin + length,
                           "rps": 10.0})  # fmt: skip
            begin += length
        servers[name] = {
            "start": t0,
            "seconds": [burst_second(t, p50) for t, p50 in enumerate(p50s)],
            "stages": stages,
            "users": [[0.0, 2], [1.0, 20], [3.0, 2]],
            "requests": 50,
            "failures": 0,
            "unfinished": 0,
            "stopped_after_end": 0,
            "recovered_after_s": 0.0,
            "client_cpu_pct": 20.0,
            "kind": kind,
            "workers": 3 if kind == "sync" else 1,
            "files": f"raw/burst/{name}/run",
            "locust_command": ["locust"],
            "server_cpu_pct": 30.0,
            "server_rss_mb": 100.0,
        }
    return {"stages": [list(s) for s in BURST_STAGES], "drain_s": 5.0, "measured": t0 + 10.0, "servers": servers}


def run_with_experiments() -> dict[str, Any]:
    """:func:`complete_run` with the timeline and the burst over time measured too, as ``make benchmark`` saves it."""
    run = complete_run()
    run["timeline"] = timeline_data()
    run["burst"] = burst_data()
    return run


def save_experiment(folder: Path, name: str, file_format: str, data: Mapping[str, Any], version: int = 1) -> Path:
    """An experiment run alone: ``data`` saved as ``folder/name`` with its format and version; returns the folder."""
    files.write_json(folder / name, store.stamp(data, file_format, version))
    return folder


def soak_series() -> dict[str, Any]:
    """A soak's series as runner.soak.series gives it: four 2-second intervals, one failure in the second."""
    return {"bucket_s": 2.0, "t_s": [0.0, 2.0, 4.0, 6.0], "rps": [10.0, 11.0, 9.0, 10.0], "failures": [0, 1, 0, 0],
            "memory_t_s": [0.0, 2.0, 4.0, 6.0, 8.0], "rss_mb": [50.0, 50.5, 51.0, 51.0, 51.5]}  # fmt: skip


# --- runs whose spreads can be judged (the comparison's) ---------------------------------------------------------


def changed_config(**changes: Any) -> dict[str, Any]:
    """:func:`config` with settings replaced, each named by its dotted path (``"load.measure_s"``, ``"name"``)."""
    data = config()
    for name, value in changes.items():
        *path, last = name.split(".")
        table = data
        for part in path:
            table = table[part]
        table[last] = value
    return data


def sampled_step(
    server: str,
    users: int,
    *,
    completed: int = 600,
    window_s: float = 12.0,
    p95: float | None = 150.0,
    p95_ci: list[float] | None = None,
    with_ci: bool = True,
    status: str = "ok",
) -> dict[str, Any]:
    """A step with the sample behind its figures: ``completed`` requests in a window of ``window_s`` seconds (what
    throughput's interval rests on) and, unless ``with_ci=False`` (a run recorded before intervals were kept), the
    95% intervals of p50 and p95, p95's being ``p95_ci`` or p95 +- 10 ms. ``p95=None`` is a step with too few
    requests for a p95; a status other than "ok" is a step that failed, with no figures."""
    if status != "ok":
        return {"server": server, "kind": "sync" if server == SYNC else "async", "workers": 3 if server == SYNC else 1,
                "users": users, "status": status, "error": "the server died"}  # fmt: skip
    record = step(server, users, rps=completed / window_s, p50=120.0, p95=150.0 if p95 is None else p95)
    figures = record["figures"]
    figures.update(window_s=window_s, completed_in_window=completed)
    latency = figures["latency"]
    latency.update(requests=completed, p95_ms=p95)
    if with_ci:
        latency["p50_ci_ms"] = [118.0, 122.0]
        latency["p95_ci_ms"] = p95_ci if p95_ci is not None else (None if p95 is None else [p95 - 10, p95 + 10])
    return record


def sampled_steps(**kwargs: Any) -> list[dict[str, Any]]:
    """Every planned step of :func:`config`, in the sweep's order, each a :func:`sampled_step` with ``kwargs``."""
    return [sampled_step(server, users, **kwargs) for users in USERS for server in (SYNC, ASYNC)]


def sampled_run(
    steps: list[dict[str, Any]] | None = None, *, status: str = "complete", config_doc: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A run of :func:`config` (or ``config_doc``) made of ``steps``, every planned step by default."""
    run = store.new_run_document(config_doc if config_doc is not None else config(), copy.deepcopy(METADATA))
    run["steps"] = steps if steps is not None else sampled_steps()
    run["status"] = status
    return run


def save_in(folder: Path, run: dict[str, Any]) -> Path:
    """Save ``run`` as ``folder/run.json`` and return the folder: for two runs side by side, or a named folder."""
    files.write_json(folder / store.RUN_FILE, run)
    return folder


def window_file(path: Path, meta: Mapping[str, Any]) -> Path:
    """A step's ``window.json`` as the locustfile writes it: ``meta`` with the window file's format and version."""
    path.write_text(json.dumps(store.stamp(meta, store.WINDOW_FORMAT, store.LOCUST_FILES_VERSION)), encoding="utf-8")
    return path


# --- runs that keep their raw data (recomputed on render, made references) ------------------------------------------

WINDOW = (1_000.0, 1_010.0)
# The locustfile's request log columns (loadtests/locustfile.py RAW_COLUMNS; importing it would start gevent).
RAW_HEADER = "start_epoch_s,response_ms,endpoint,ok,error,request_id,handler_ms,pool_ms"
SAMPLES_HEADER = "epoch_s,cpu_s,rss_bytes,processes"


def locust_rows(seed: int, requests: int = 80) -> list[tuple[float, float, str, int, str, str, float, float]]:
    """A step's requests as the locustfile logs them, pseudo-random but fixed by ``seed``: some sent in the
    warm-up, some drained past the window, one failure, the server's handler and pool times on every answer."""
    rng = random.Random(seed)
    start, end = WINDOW
    rows = []
    for number in range(requests):
        sent = round(rng.uniform(start - 2.0, end), 6)
        page = rng.random() < 0.8
        ms = round(rng.uniform(100.0, 900.0) if page else rng.uniform(10.0, 60.0), 3)
        ok = number != 7
        handler = round(ms * rng.uniform(0.6, 0.95), 3) if ok else math.nan
        pool = round(rng.choice([0.02, 0.05, rng.uniform(1.0, 40.0)]), 3) if ok else math.nan
        rows.append((sent, ms, "page" if page else "short", int(ok), "" if ok else "HTTPError: 500", str(number),
                     handler, pool))  # fmt: skip
    return sorted(rows)


def write_request_log(path: Path, rows: list[tuple[float, float, str, int, str, str, float, float]]) -> Path:
    """``rows`` written as the locustfile writes ``requests.csv`` (its number formats, empty for a missing time)."""

    def ms(value: float) -> str:
        return "" if math.isnan(value) else f"{value:.3f}"

    lines = [RAW_HEADER]
    lines += [f"{s:.6f},{t:.3f},{name},{ok},{error},{rid},{ms(h)},{ms(p)}" for s, t, name, ok, error, rid, h, p in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_locust_step(folder: Path, seed: int) -> None:
    """A step folder as Locust and the sweep leave it: request log, totals, window file, sampled resources and
    logs, from :func:`locust_rows`."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = locust_rows(seed)
    write_request_log(folder / "requests.csv", rows)
    entries = []
    for name in ("page", "short"):
        after = [r for r in rows if r[2] == name and r[0] + r[1] / 1000 >= WINDOW[0]]
        buckets: dict[str, int] = {}
        for row in after:
            bucket = str(int(round(row[1], -1)))
            buckets[bucket] = buckets.get(bucket, 0) + 1
        entries.append({"name": name, "method": "GET", "num_requests": len(after),
                        "num_failures": sum(1 for r in after if not r[3]),
                        "total_response_time": sum(r[1] for r in after), "min_response_time": min(r[1] for r in after),
                        "max_response_time": max(r[1] for r in after), "response_times": buckets})  # fmt: skip
    (folder / "locust.json").write_text(json.dumps(entries, indent=4), encoding="utf-8")
    meta = {"test_start": WINDOW[0] - 2.0, "window_start": WINDOW[0], "window_end": WINDOW[1],
            "client_cpu_pct": 10.0 + seed, "unfinished": [{"start_epoch_s": 1009.0, "endpoint": "page",
            "age_ms": 14_000.0}]}  # fmt: skip
    window_file(folder / "window.json", meta)
    samples = [f"{WINDOW[0] + t / 4:.3f},{0.5 + t / 40:.3f},{100_000_000 + t * 4096},2" for t in range(48)]
    (folder / "resources.csv").write_text("\n".join([SAMPLES_HEADER, *samples]) + "\n", encoding="utf-8")
    (folder / "server.log").write_text("[INFO] Booting worker\n", encoding="utf-8")
    (folder / "locust.log").write_text("", encoding="utf-8")


def measured_run(run_dir: Path) -> Path:
    """:func:`complete_run` as the sweep leaves it on disk: every step's folder with its Locust files (the async
    server's at 50 users with the database's sampled resources too), and each step's figures computed from them
    by the sweep's own function. Returns ``run_dir``."""
    run = complete_run()
    for seed, record in enumerate(run["steps"]):
        folder = run_dir / record["files"]
        write_locust_step(folder, seed)
        if record["server"] == ASYNC and record["users"] == 50:
            (folder / "database_resources.csv").write_text(f"{SAMPLES_HEADER}\n1000.000,0.100,50000000,8\n",
                                                            encoding="utf-8")  # fmt: skip
        record["figures"] = step_figures(
            folder / "locust.json", folder / "requests.csv", folder / "window.json"
        ).to_dict()
    files.write_json(run_dir / store.RUN_FILE, run)
    return run_dir
