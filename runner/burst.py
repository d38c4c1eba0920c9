"""``python -m runner.burst``: the burst over time. A few users, then many at once, then a few again.

The sweep measures steady states; a burst is something that happens over time. Each server gets one Locust run
whose user count follows the scenario's ``[burst] stages`` (``loadtests/burst_shape.py``), and every request is
logged. Figures per second are taken over the requests *sent* in that second, so a point on the chart is what
a user who clicked at that moment waited, including the queue the crowd left behind it. Per stage, the same
figures over the whole stage; after a drop, how long the server took to serve the remaining users as fast as
before the crowd came (``recovered_after_s``).

A full run measures it after the timeline, into ``run.json``; run alone (``make burst``) it writes ``burst.json``
and its chart into a folder of its own (see runner.experiment). Only this crowd over time is called the burst;
the three requests sent together are the timeline (runner.timeline).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runner import experiment, render
from runner.config import RunConfig, ScenarioError, ServerConfig
from runner.loadgen import LoadError, StepFiles, burst_command, deadline, run_locust
from runner.processes import CpuPlan, TreeSampler
from runner.servers import serve
from runner.stats import Latency, OutputError, read_raw, read_window
from runner.sweep import new_step_folder

# A second's median counts as recovered within this factor of the first stage's median.
RECOVERED_WITHIN = 2.0

Row = tuple[float, float, str, bool]


def _figures(times_ms: list[float], failures: int) -> dict[str, Any]:
    latency = Latency.from_times(times_ms, failures)
    return {
        "requests": latency.requests,
        "failures": latency.failures,
        "p50_ms": latency.p50_ms,
        "p95_ms": latency.p95_ms,
        "max_ms": latency.max_ms,
    }


def per_second(rows: Sequence[Row], t0: float, seconds: int) -> list[dict[str, Any]]:
    """For each whole second from ``t0``: requests sent in it and their figures, and completions in it."""
    sent: list[list[Row]] = [[] for _ in range(seconds)]
    done = [0] * seconds
    for row in rows:
        start, ms, _, ok = row
        index = math.floor(start - t0)
        if 0 <= index < seconds:
            sent[index].append(row)
        finish = math.floor(start + ms / 1000.0 - t0)
        if ok and 0 <= finish < seconds:
            done[finish] += 1
    out = []
    for second, bucket in enumerate(sent):
        figures = _figures([r[1] for r in bucket if r[3]], sum(1 for r in bucket if not r[3]))
        # Pages apart too: in a quiet second one short request (10 ms) or one page (110 ms) is the whole
        # sample, so a median over both jumps between them; the chart draws pages.
        pages = _figures([r[1] for r in bucket if r[3] and r[2] == "page"], 0)
        figures.update(
            t=second,
            completed=done[second],
            page_requests=pages["requests"],
            page_p50_ms=pages["p50_ms"],
            page_p95_ms=pages["p95_ms"],
        )
        out.append(figures)
    return out


def per_stage(rows: Sequence[Row], t0: float, stages: Sequence[tuple[int, float]]) -> list[dict[str, Any]]:
    """Exact figures over each stage's sent requests, and its throughput (completions inside the stage)."""
    out = []
    begin = 0.0
    for users, length in stages:
        end = begin + length
        inside = [r for r in rows if begin <= r[0] - t0 < end]
        completed = sum(1 for r in rows if r[3] and begin <= r[0] + r[1] / 1000.0 - t0 < end)
        figures = _figures([r[1] for r in inside if r[3]], sum(1 for r in inside if not r[3]))
        figures.update(users=users, start_s=begin, end_s=end, rps=completed / length)
        out.append(figures)
        begin = end
    return out


def recovered_after(seconds: Sequence[dict[str, Any]], baseline_ms: float, drop_at: float) -> float | None:
    """Seconds from the drop until every later second's median is back within RECOVERED_WITHIN x the baseline;
    None if that never happened before the run ended."""
    limit = RECOVERED_WITHIN * baseline_ms
    after = [s for s in seconds if s["t"] >= drop_at and s["requests"] > 0]
    if not after or not math.isfinite(baseline_ms):
        return None
    for index, second in enumerate(after):
        if all(s["p50_ms"] <= limit for s in after[index:]):
            return float(second["t"] - drop_at)
    return None


def summarise(rows: Sequence[Row], meta: dict[str, Any], stages: Sequence[tuple[int, float]]) -> dict[str, Any]:
    """Everything the chart and the report need from one server's burst run."""
    t0 = float(meta["window_start"])
    total = sum(length for _, length in stages)
    drain_end = max((r[0] + r[1] / 1000.0 for r in rows), default=t0 + total)
    span = max(math.ceil(total), math.ceil(drain_end - t0))
    seconds = per_second(rows, t0, span)
    stage_figures = per_stage(rows, t0, stages)
    recovery = None
    if len(stages) >= 2 and stages[-1][0] < stages[-2][0]:
        recovery = recovered_after(
            [s for s in seconds if s["t"] < total], stage_figures[0]["p50_ms"], total - stages[-1][1]
        )
    # As in the sweep (runner.stats): Locust's stop races with users waking from think time, and a request
    # started after the last stage ended is killed at once. It never belonged to the run and is counted apart.
    end = float(meta.get("window_end", t0 + total))
    unfinished = [u for u in meta.get("unfinished", []) if float(u["start_epoch_s"]) <= end]
    stopped_after = len(meta.get("unfinished", [])) - len(unfinished)
    return {
        "start": t0,
        "seconds": seconds,
        "stages": stage_figures,
        "users": [[t - t0, n] for t, n in meta.get("user_counts", [])],
        "requests": len(rows),
        "failures": sum(1 for r in rows if not r[3]),
        "unfinished": len(unfinished),
        "stopped_after_end": stopped_after,
        "recovered_after_s": recovery,
        "client_cpu_pct": meta.get("client_cpu_pct"),
    }


def measure_server(config: RunConfig, spec: ServerConfig, folder: Path, cpus: CpuPlan) -> dict[str, Any]:
    """One server's burst run, start to finish; raises ServerError, LoadError or OutputError."""
    folder.mkdir(parents=True, exist_ok=True)
    with serve(spec, config, folder / "server.log", cpus.server) as server:
        files = StepFiles.inside(folder)
        cmd = burst_command(config, server.url, files)
        with TreeSampler(server.process.pid) as sampler:
            run_locust(cmd, files, folder, cpus.client, deadline(config.burst.seconds + config.burst.drain_s))
    meta = read_window(files.meta)
    if "window_start" not in meta or "window_end" not in meta:
        raise OutputError(f"{files.meta}: the burst ended before it started")
    result = summarise(read_raw(files.raw), meta, config.burst.stages)
    cpu, rss = sampler.window(float(meta["window_start"]), float(meta["window_end"]))
    result.update(
        kind=spec.kind,
        workers=spec.workers,
        files=os.path.relpath(folder, folder.parents[2]),  # run folder / raw / burst / <server>
        locust_command=cmd,
        server_cpu_pct=cpu,
        server_rss_mb=rss,
    )
    return result


def measure(config: RunConfig, cpus: CpuPlan, folder: Path) -> dict[str, Any]:
    """The burst against every server of the scenario, one after another, each on a fresh server."""
    servers: dict[str, Any] = {}
    for spec in config.servers:
        try:
            servers[spec.name] = measure_server(config, spec, new_step_folder(folder / spec.name), cpus)
        except (LoadError, OutputError) as error:
            servers[spec.name] = {"kind": spec.kind, "error": str(error)}
    return {
        "stages": [list(stage) for stage in config.burst.stages],
        "drain_s": config.burst.drain_s,
        "measured": time.time(),
        "servers": servers,
    }


def stages_text(config: RunConfig) -> str:
    """The scenario's stages in words: "5 users for 5 s, then 500 users for 15 s, ..."."""
    return ", then ".join(f"{users} users for {seconds:g} s" for users, seconds in config.burst.stages)


def describe(config: RunConfig) -> str:
    """What is about to be measured, in one line."""
    return f"burst over time: {stages_text(config)}, on {', '.join(s.name for s in config.servers)}"


def check(config: RunConfig) -> None:
    """Run alone, the burst needs stages; in a full run a scenario without them simply has no burst."""
    if not config.burst.stages:
        raise ScenarioError(f"{config.source} has no [burst] stages; add e.g. stages = [[5, 5], [500, 15], [5, 15]]")


def problems(data: Mapping[str, Any]) -> list[str]:
    """The servers the burst failed on, each with its error (the others' figures are kept)."""
    servers: Mapping[str, Any] = data.get("servers", {})
    return [f"burst on {name} failed: {server['error']}" for name, server in servers.items() if "error" in server]


# The experiment, as the full run (runner.cli) and ``python -m runner.burst`` both run it.
EXPERIMENT = experiment.Experiment(
    "burst", render.BURST, "raw/burst", measure, describe, "the servers and Locust", check, problems
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = experiment.parser("python -m runner.burst", __doc__ or "", "whose burst and servers")
    args = parser.parse_args(argv)
    return experiment.run(EXPERIMENT, args.scenario, args.results_dir)


if __name__ == "__main__":
    sys.exit(main())
