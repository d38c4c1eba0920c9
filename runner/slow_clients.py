"""``python -m runner.slow_clients``: slow clients against each server, while its normal users run.

A server that holds a thread or a process for a connection while it reads the request (gunicorn's sync workers,
gthread's threads) can be stopped by a few clients that send their requests slowly; an event loop only notes each
byte. For each server of the scenario and each K in ``[slow_clients] counts`` (0 first), a fresh server gets
``users`` normal Locust users for ``before_s + hold_s + after_s``; ``before_s`` after Locust started, K extra
connections (runner.trickle) trickle their requests for ``hold_s`` and then leave. The phases are cut at the slow
clients' own measured epochs (when they began connecting, when the last one was gone), not at the schedule. Per
phase: the normal users' throughput (completions inside it), median and p95 (of requests sent in it), failures and
timeouts; per K, how many slow connections the server closed itself and when, and how long after the slow clients
left every second's median was back near the median before them (runner.burst's recovered_after).

A full run measures it after the burst, into ``run.json``, when the scenario has counts; run alone (``make
slow-clients``) it writes ``slow_clients.json`` and its chart into a folder of its own (see runner.experiment).
"""

from __future__ import annotations

import ast
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner import experiment, proxy, render
from runner.burst import RECOVERED_WITHIN, Row, per_second, per_stage, recovered_after
from runner.config import GUNICORN_WORKER_CONNECTIONS, ROOT, RunConfig, ScenarioError, ServerConfig
from runner.loadgen import LoadError, StepFiles, burst_command, deadline, run_locust
from runner.processes import CpuPlan, TreeSampler
from runner.servers import serve
from runner.stats import OutputError, read_raw, read_window
from runner.sweep import new_step_folder
from runner.trickle import BODY_LENGTH, PAD_BYTES, PATH, Trickler

PHASES = ("before", "during", "after")
# A failed request that took at least this share of the request timeout is counted as a timeout (Locust's log
# keeps the outcome and the time, so the time says which failures were the timeout running out).
TIMEOUT_SHARE = 0.99
GUNICORN_CONF = ROOT / "sync_app" / "gunicorn.conf.py"
# gunicorn 27.0.1's own defaults for what sync_app/gunicorn.conf.py may leave unset (gunicorn/config.py), and the
# time a gthread worker's thread waits for a new connection's first bytes (gunicorn/workers/gthread.py,
# DEFAULT_WORKER_DATA_TIMEOUT) before handing it back to the worker's poller.
GUNICORN_DEFAULTS: dict[str, int] = {"timeout": 30, "keepalive": 2, "limit_request_fields": 100,
                                     "limit_request_field_size": 8190}  # fmt: skip
GTHREAD_FIRST_DATA_S = 5


def gunicorn_settings(path: Path = GUNICORN_CONF) -> dict[str, Any]:
    """The literal settings of gunicorn's configuration file (``name = value`` at its top level), over gunicorn's
    defaults: read, not run, so stating them starts nothing."""
    settings: dict[str, Any] = dict(GUNICORN_DEFAULTS)
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                settings[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return settings


def server_limits(spec: ServerConfig, settings: Mapping[str, Any] | None = None) -> list[str]:
    """The server's own timeouts and limits that decide what a slow client can do to it, one statement each."""
    conf = gunicorn_settings() if settings is None else settings
    lines: list[str] = []
    if spec.server == "gunicorn":
        lines.append(
            f"gunicorn `timeout` = {conf['timeout']} s ({GUNICORN_CONF.relative_to(ROOT)}): the master kills and "
            "replaces a worker that has not checked in for that long; a sync worker checks in only between requests"
        )
        if spec.mode == "sync":
            lines.append(
                "sync worker: reads a request on a blocking socket with no read timeout of its own, so a slow client "
                "holds the worker until it finishes, leaves, or `timeout` kills the worker; no keep-alive"
            )
        elif spec.mode == "gthread":
            lines.append(
                f"gthread: a thread waits up to {GTHREAD_FIRST_DATA_S} s for a new connection's first bytes "
                "(gunicorn's DEFAULT_WORKER_DATA_TIMEOUT) and then reads the request blocking, so a client that "
                f"trickles holds one of the worker's {spec.threads} threads; `keepalive` = {spec.keep_alive_s} s "
                "applies between requests only"
            )
        else:
            bound = (
                f"reading each request, the first one too, is bounded by `keepalive` = {spec.keep_alive_s} s "
                "(gunicorn's base_async wraps its parser in gevent.Timeout(keepalive)), after which the connection is "
                "closed"
                if spec.keep_alive_s
                else "with keep-alive off nothing bounds how long a request may take to arrive"
            )
            lines.append(
                f"gevent: each connection is a greenlet, so a slow one holds one of the worker's {spec.connections} "
                f"connections (gunicorn's worker_connections, default {GUNICORN_WORKER_CONNECTIONS}); {bound}"
            )
        lines.append(
            f"gunicorn header limits: at most {conf['limit_request_fields']} header fields of "
            f"{conf['limit_request_field_size']} bytes each; request line limit {conf.get('limit_request_line', 4094)}"
            " (0: none)"
        )
    else:
        lines.append(
            f"uvicorn --timeout-keep-alive {spec.keep_alive_s} s closes an idle connection between requests only; "
            "it has no timeout on a request still arriving, so a slow client holds only its own connection"
        )
        lines.append(
            "uvicorn with --http httptools sets no limit on header size or count of its own (its "
            "--h11-max-incomplete-event-size applies to the h11 parser only); no --limit-concurrency is set"
        )
    if spec.proxy is not None:
        lines.append(
            f"behind {spec.proxy}, which reads each request whole before passing it to the app, so a slow client holds "
            f"only a connection of the proxy; its {proxy.timeouts_text()}"
        )
    return lines


def style_text(config: RunConfig) -> str:
    """How the slow clients send, in words."""
    sc = config.slow_clients
    every = f"one byte every {sc.byte_interval_s:g} s"
    if sc.style == "body":
        return (
            f"complete headers of `GET {PATH}` with `Content-Length: {BODY_LENGTH}`, then the body {every}, "
            "never complete"
        )
    return (
        f"the request line and headers of `GET {PATH}` {every} (then ~{PAD_BYTES}-byte `X-Slow-<i>` headers), "
        "never the blank line that ends them"
    )


def phase_figures(
    rows: Sequence[Row], t0: float, bounds: Sequence[float], users: int, timeout_ms: float, settle_s: float = 0.0
) -> list[dict[str, Any]]:
    """Before, during and after from three cut points after ``t0`` (the slow clients' start, their leaving, the end
    of the normal load): runner.burst's per-stage figures, named, with the timeouts among the failures.

    *Before* begins ``settle_s`` after ``t0`` (at most half-way to the slow clients): every user sends its first
    request at once, so until each has had an answer and drawn a think time, more requests are sent than the
    users' steady pace, and a throughput over that start would be a baseline no later phase can reach."""
    start, left, end = (b - t0 for b in bounds)
    lengths = [start, left - start, end - left]
    if any(not length > 0 for length in lengths):
        raise OutputError(
            f"the slow clients' phases do not fit the normal load: before {lengths[0]:.2f} s, during "
            f"{lengths[1]:.2f} s, after {lengths[2]:.2f} s (each must be > 0)"
        )
    settle = min(max(settle_s, 0.0), start / 2)
    if settle > 0:
        lengths = [settle, start - settle, *lengths[1:]]
    phases = per_stage(rows, t0, [(users, length) for length in lengths])[-3:]
    for name, figures in zip(PHASES, phases, strict=True):
        figures["phase"] = name
        figures["timeouts"] = sum(
            1
            for r in rows
            if not r[3] and r[1] >= TIMEOUT_SHARE * timeout_ms and figures["start_s"] <= r[0] - t0 < figures["end_s"]
        )
    return phases


def summarise(
    rows: Sequence[Row],
    meta: Mapping[str, Any],
    trickle: Mapping[str, Any],
    users: int,
    timeout_ms: float,
    settle_s: float = 0.0,
) -> dict[str, Any]:
    """One server at one K: the phases from the slow clients' epochs, per second, the slow connections, recovery."""
    t0, end = float(meta["window_start"]), float(meta["window_end"])
    if trickle.get("started") is None or trickle.get("left") is None:
        raise OutputError("the slow clients never started: the normal load ended before they were due")
    started, left = float(trickle["started"]), float(trickle["left"])
    phases = phase_figures(rows, t0, (started, left, end), users, timeout_ms, settle_s)
    drain_end = max((r[0] + r[1] / 1000.0 for r in rows), default=end)
    seconds = per_second(rows, t0, max(math.ceil(end - t0), math.ceil(drain_end - t0)))
    count = int(trickle["count"])
    recovery = None
    if count:
        recovery = recovered_after([s for s in seconds if s["t"] < end - t0], phases[0]["p50_ms"], left - t0)
    connections = [
        {
            "opened_s": None if c["opened"] is None else c["opened"] - t0,
            "closed_s": None if c["closed"] is None else c["closed"] - t0,
            "closed_by": c["closed_by"],
            "sent_bytes": c["sent_bytes"],
            "answer": c["answer"],
            "error": c["error"],
        }
        for c in trickle.get("connections", [])
    ]
    by_server = sorted(c["closed_s"] for c in connections if c["closed_by"] == "server" and c["closed_s"] is not None)
    # As in the burst: a request sent after the load ended was killed as Locust stopped; it never belonged to it.
    unfinished = [u for u in meta.get("unfinished", []) if float(u["start_epoch_s"]) <= end]
    return {
        "count": count,
        "start": t0,
        "phases": phases,
        "seconds": seconds,
        "slow": {
            "started_s": started - t0,
            "all_open_s": None if trickle.get("all_open") is None else float(trickle["all_open"]) - t0,
            "left_s": left - t0,
            "opened": sum(1 for c in connections if c["opened_s"] is not None),
            "connect_errors": sorted({c["error"] for c in connections if c["error"]}),
            "server_closed": len(by_server),
            "server_closed_s": by_server,
            "answered": sorted({c["answer"] for c in connections if c["answer"]}),
            "connections": connections,
        },
        "requests": len(rows),
        "failures": sum(1 for r in rows if not r[3]),
        "timeouts": sum(p["timeouts"] for p in phases),
        "unfinished": len(unfinished),
        "recovered_after_s": recovery,
        "client_cpu_pct": meta.get("client_cpu_pct"),
    }


def settle_s(config: RunConfig) -> float:
    """How long the users' first requests, all sent at once, take to settle into their pace: the longest think
    time (by then every user has had an answer and drawn one)."""
    return config.load.think_time_s[1]


def measure_run(config: RunConfig, spec: ServerConfig, count: int, folder: Path, cpus: CpuPlan) -> dict[str, Any]:
    """One server at one K, on a fresh server; raises ServerError, LoadError or OutputError."""
    sc = config.slow_clients
    folder.mkdir(parents=True, exist_ok=True)
    with serve(spec, config, folder / "server.log", cpus.server) as server:
        files = StepFiles.inside(folder)
        # The progress file appears when Locust's users start: the slow clients' clock starts there.
        cmd = [*burst_command(config, server.url, files, [(sc.users, sc.seconds)], sc.drain_s),
               "--progress-file", str(files.progress)]  # fmt: skip
        where = urlsplit(server.url)
        trickler = Trickler(
            where.hostname or "127.0.0.1",
            where.port or 80,
            count,
            sc.style,
            sc.byte_interval_s,
            sc.hold_s,
            ready=files.progress.exists,
            delay_s=sc.before_s,
            cpus=cpus.client,
        )
        with TreeSampler(server.process.pid) as sampler, trickler:
            run_locust(cmd, files, folder, cpus.client, deadline(sc.seconds + sc.drain_s))
    if trickler.error is not None:
        raise OutputError(f"the slow clients failed: {type(trickler.error).__name__}: {trickler.error}")
    meta = read_window(files.meta)
    if "window_start" not in meta or "window_end" not in meta:
        raise OutputError(f"{files.meta}: the normal load ended before it started")
    result = summarise(read_raw(files.raw), meta, trickler.result.to_dict(), sc.users,
                       config.load.request_timeout_s * 1000.0, settle_s(config))  # fmt: skip
    cpu, rss = sampler.window(float(meta["window_start"]), float(meta["window_end"]))
    result.update(
        files=os.path.relpath(folder, folder.parents[3]),  # run folder / raw / slow-clients / <server> / k<K>
        locust_command=cmd,
        server_cpu_pct=cpu,
        server_rss_mb=rss,
    )
    return result


def measure(config: RunConfig, cpus: CpuPlan, folder: Path) -> dict[str, Any]:
    """Every server of the scenario at every K, one after another, each on a fresh server."""
    sc = config.slow_clients
    servers: dict[str, Any] = {}
    for spec in config.servers:
        runs: list[dict[str, Any]] = []
        for count in sc.counts:
            try:
                runs.append(measure_run(config, spec, count, new_step_folder(folder / spec.name / f"k{count}"), cpus))
            except (LoadError, OutputError) as error:
                runs.append({"count": count, "error": str(error)})
        servers[spec.name] = {
            "kind": spec.kind,
            "setup": f"{spec.server}, {spec.describe()}",
            "slots": spec.slots,
            "limits": server_limits(spec),
            "runs": runs,
        }
    return {
        "users": sc.users,
        "counts": list(sc.counts),
        "style": sc.style,
        "style_text": style_text(config),
        "before_s": sc.before_s,
        "hold_s": sc.hold_s,
        "after_s": sc.after_s,
        "byte_interval_s": sc.byte_interval_s,
        "drain_s": sc.drain_s,
        "request_timeout_s": config.load.request_timeout_s,
        "settle_s": settle_s(config),
        "recovered_within": RECOVERED_WITHIN,
        "measured": time.time(),
        "servers": servers,
    }


def describe(config: RunConfig) -> str:
    """What is about to be measured, in one line."""
    sc = config.slow_clients
    return (
        f"slow clients: {sc.users} users for {sc.seconds:g} s, with K = {', '.join(map(str, sc.counts))} slow "
        f"connections ({sc.style}, a byte every {sc.byte_interval_s:g} s) for {sc.hold_s:g} s after {sc.before_s:g} s, "
        f"on {', '.join(s.name for s in config.servers)}"
    )


def check(config: RunConfig) -> None:
    """Run alone, the experiment needs counts; in a full run a scenario without them simply does not run it."""
    if not config.slow_clients.counts:
        raise ScenarioError(
            f"{config.source} has no [slow_clients] counts; add e.g. [slow_clients] users = 50, counts = [0, 2, 4, 8]"
        )


def problems(data: Mapping[str, Any]) -> list[str]:
    """Each server and K the experiment failed on, with its error (the others' figures are kept)."""
    servers: Mapping[str, Any] = data.get("servers", {})
    return [
        f"slow clients on {name} with K = {run['count']} failed: {run['error']}"
        for name, server in servers.items()
        for run in server.get("runs", [])
        if "error" in run
    ]


# The experiment, as the full run (runner.cli) and ``python -m runner.slow_clients`` both run it.
EXPERIMENT = experiment.Experiment(
    "slow-clients",
    render.SLOW_CLIENTS,
    "raw/slow-clients",
    measure,
    describe,
    "the servers, Locust and the slow clients",
    check,
    problems,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = experiment.parser("python -m runner.slow_clients", __doc__ or "", "whose slow clients and servers")
    args = parser.parse_args(argv)
    return experiment.run(EXPERIMENT, args.scenario, args.results_dir)


if __name__ == "__main__":
    sys.exit(main())
