"""``python -m runner.soak``: hold one server at a steady load for minutes and judge it.

A burst shows how a server copes for seconds; a soak shows whether it stays correct and bounded over time. The
soak is one step of the ordinary sweep (same server start, Locust process, pinning and raw files) with a long
window, judged on two things: no request may fail or go unanswered, and the server's resident memory may grow by
at most ``--max-growth`` from the end of the warm-up to the end of the window.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import signal
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from runner import charts, files, store
from runner.config import RunConfig, ScenarioError, load_config
from runner.environment import describe
from runner.loadgen import StepFiles
from runner.numbers import fmt, fmt_ms
from runner.processes import plan_cpus
from runner.servers import ServerError
from runner.stats import read_raw, read_window
from runner.sweep import RESOURCES_FILE, Step, measure_step

SOAK_FORMAT = "sync-async-bench/soak"
SOAK_VERSION = 1
SOAK_FILE = "soak.json"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: list[str]
    failures: int
    unfinished: int
    baseline_mb: float
    final_mb: float
    growth_pct: float
    limit_pct: float


def memory_ends(samples: list[tuple[float, int]], start: float, end: float) -> tuple[float, float]:
    """Median resident memory (MB) just after ``start`` and just before ``end``.

    Medians over a span of up to 10 s, not single samples, so one garbage-collection peak cannot pass or fail a
    soak. The span shrinks for short soaks (a quarter of the window).
    """
    span = max(1.0, min(10.0, (end - start) / 4))
    first = [rss for t, rss in samples if start <= t <= start + span]
    last = [rss for t, rss in samples if end - span <= t <= end]
    if not first or not last:
        return math.nan, math.nan
    return statistics.median(first) / 1e6, statistics.median(last) / 1e6


def judge(failures: int, unfinished: int, baseline_mb: float, final_mb: float, max_growth: float) -> Verdict:
    reasons = []
    if failures:
        reasons.append(f"{failures} request(s) failed")
    if unfinished:
        reasons.append(f"{unfinished} request(s) were never answered")
    growth = (final_mb / baseline_mb - 1.0) if baseline_mb > 0 else math.nan
    if not math.isfinite(growth):
        reasons.append("memory could not be measured at both ends of the window")
    elif growth > max_growth:
        reasons.append(f"resident memory grew {growth * 100:.1f}% (limit {max_growth * 100:.0f}%)")
    return Verdict(
        passed=not reasons,
        reasons=reasons,
        failures=failures,
        unfinished=unfinished,
        baseline_mb=baseline_mb,
        final_mb=final_mb,
        growth_pct=growth * 100,
        limit_pct=max_growth * 100,
    )


def series(step_dir: Path, start: float, end: float) -> dict[str, Any]:
    """Completed requests, failures and memory over the window, in buckets of about a thirtieth of it."""
    bucket = max(1.0, round((end - start) / 30))
    raw = read_raw(step_dir / "requests.csv")
    edges = [start + i * bucket for i in range(max(1, math.ceil((end - start) / bucket)))]
    done, failed = [0] * len(edges), [0] * len(edges)
    for begun, ms, _, ok in raw:
        finished = begun + ms / 1000
        if start <= finished < end:
            index = min(int((finished - start) // bucket), len(edges) - 1)
            done[index] += 1
            failed[index] += 0 if ok else 1
    samples = read_samples(step_dir / RESOURCES_FILE)
    return {
        "bucket_s": bucket,
        "t_s": [e - start for e in edges],
        "rps": [n / bucket for n in done],
        "failures": failed,
        "memory_t_s": [t - start for t, _ in samples],
        "rss_mb": [rss / 1e6 for _, rss in samples],
    }


def read_samples(path: Path) -> list[tuple[float, int]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [(float(r["epoch_s"]), int(r["rss_bytes"])) for r in csv.DictReader(handle)]
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise store.ResultsError(f"{path} cannot be read: {error!r}") from None


def report(config: RunConfig, record: dict[str, Any], verdict: Verdict) -> str:
    figures = record.get("figures") or {}
    latency = figures.get("latency") or {}
    users = record["users"]
    lines = [
        f"# Soak: `{config.name}`: {'PASSED' if verdict.passed else 'FAILED'}",
        "",
        f"{record['server']} ({record['workers']} worker(s)) held at {users} users for {config.load.measure_s:g} s "
        f"after a {config.load.warmup_s:g} s warm-up.",
        "",
    ]
    lines += [f"- **Failed:** {reason}" for reason in verdict.reasons]
    requests = f"{latency.get('requests')} completed, {verdict.failures} failed, {verdict.unfinished} unanswered"
    speed = f"{fmt(figures.get('rps'))} requests/s"
    times = ", ".join(f"{key} {fmt_ms(latency.get(f'{key}_ms'))}" for key in ("p50", "p99", "max"))
    memory = f"{verdict.baseline_mb:.1f} MB after the warm-up, {verdict.final_mb:.1f} MB at the end"
    growth = f"{verdict.growth_pct:+.1f}%; limit +{verdict.limit_pct:.0f}%"
    cpu = f"server {fmt(record.get('server_cpu_pct'), 0)}% of its core, Locust {fmt(figures.get('client_cpu_pct'), 0)}%"
    lines += [
        f"- Requests: {requests}; {speed}; {times}.",
        f"- Resident memory: {memory} ({growth}).",
        f"- CPU: {cpu} of its own.",
        "",
        "![Soak](charts/soak.png)",
        "",
    ]
    if record.get("error"):
        lines += ["The step failed:", "", "```", str(record["error"]), "```", ""]
    return "\n".join(lines)


def run_soak(config: RunConfig, max_growth: float, console: Console) -> tuple[Path, Verdict]:
    if len(config.servers) != 1 or len(config.load.users) != 1:
        raise ScenarioError(f"{config.source}: a soak scenario holds one server at one user level")
    cpus = plan_cpus(config.run.pin_cpus, config.run.server_cores)
    if cpus.client:
        os.sched_setaffinity(0, cpus.client)
    run_dir = store.new_run_dir(config.results_root, config.name)
    step = Step(config.servers[0], config.load.users[0])
    console.print(f"soak: {step.server.name} at {step.users} users for {config.step_seconds():.0f} s at most")
    console.print(f"  into {run_dir}", markup=False)

    with store.locked(run_dir):
        record = measure_step(config, step, run_dir, cpus, _progress(console, config))
        step_dir = run_dir / record["files"]
        window = read_window(StepFiles.inside(step_dir).meta) if record.get("figures") else {}
        start, end = window.get("window_start"), window.get("window_end")
        figures = record.get("figures") or {}
        failures = int((figures.get("latency") or {}).get("failures") or 0)
        unfinished = int(figures.get("unfinished") or 0)
        if start is None or end is None:
            verdict = judge(failures, unfinished, math.nan, math.nan, max_growth)
            data: dict[str, Any] = {}
        else:
            baseline, final = memory_ends(read_samples(step_dir / RESOURCES_FILE), start, end)
            verdict = judge(failures, unfinished, baseline, final, max_growth)
            data = series(step_dir, start, end)
            outcome = "PASSED" if verdict.passed else "FAILED: " + "; ".join(verdict.reasons)
            charts.soak_chart(data, step.server, f"{step.server.name} at {step.users} users: {outcome}",
                              verdict.baseline_mb, verdict.limit_pct,
                              run_dir / charts.CHARTS_DIR / charts.CHART_FILES["soak"])  # fmt: skip
        if record["status"] != "ok" and verdict.passed:
            verdict = replace(verdict, passed=False, reasons=["the step itself failed (see the report)"])
        document = {
            "metadata": describe(cpus.note),
            "config": config.to_dict(),
            "step": record,
            "series": data,
            "verdict": verdict.__dict__,
        }
        files.write_json(run_dir / SOAK_FILE, store.stamp(document, SOAK_FORMAT, SOAK_VERSION))
        text = report(config, record, verdict)
        files.write_atomically(run_dir / "report.md", lambda f: f.write(text))
    return run_dir, verdict


def _progress(console: Console, config: RunConfig) -> Callable[[float], None]:
    """A line every 30 s: a soak is long, and a silent terminal looks like a hang."""
    shown = [0]

    def tick(elapsed: float) -> None:
        if elapsed >= shown[0] + 30:
            shown[0] = int(elapsed)
            total = config.load.warmup_s + config.load.measure_s
            console.print(f"  {elapsed:.0f} s of {total:.0f} s", markup=False)

    return tick


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runner.soak", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="soak", help="a one-server, one-level scenario (default soak)")
    parser.add_argument("--duration", type=float, help="total seconds at load, warm-up included (default 300)")
    parser.add_argument("--users", help="users to hold (default: the scenario's)")
    parser.add_argument("--max-growth", type=float, default=0.10, help="allowed memory growth, a fraction (0.10)")
    parser.add_argument("--results-dir", help="where the soak's folder is created")
    args = parser.parse_args(argv)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    console = Console(highlight=False, soft_wrap=True)
    try:
        flags = {"--users": args.users, "--results-dir": args.results_dir}
        config = load_config(args.scenario, os.environ, flags)
        if args.duration is not None:
            if not math.isfinite(args.duration) or args.duration <= 0:
                raise ScenarioError(f"--duration must be a number of seconds > 0, got {args.duration}")
            warmup = min(config.load.warmup_s, args.duration / 10)
            load = replace(config.load, warmup_s=warmup, measure_s=args.duration - warmup)
            config = replace(config, load=load, overrides=(*config.overrides, f"duration={args.duration:g} s"))
        if not 0 <= args.max_growth < 10:
            raise ScenarioError(f"--max-growth is a fraction such as 0.10, got {args.max_growth}")
    except ScenarioError as error:
        err.print(f"error: {error}", markup=False)
        return 2
    # SIGTERM and a closed terminal (SIGHUP) take the same path as Ctrl-C: every process is torn down.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    try:
        run_dir, verdict = run_soak(config, args.max_growth, console)
    except KeyboardInterrupt:
        err.print("interrupted: the server and Locust were stopped", markup=False)
        return 130
    except (ServerError, ScenarioError, store.ResultsError) as error:
        err.print(f"error: {error}", markup=False)
        return 1 if isinstance(error, ServerError) else 2
    console.print(f"{'PASSED' if verdict.passed else 'FAILED'}: {'; '.join(verdict.reasons) or 'no failures'}; "
                  f"memory {verdict.baseline_mb:.1f} -> {verdict.final_mb:.1f} MB ({verdict.growth_pct:+.1f}%)",
                  markup=False)  # fmt: skip
    console.print(f"results: {run_dir}", markup=False)
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
