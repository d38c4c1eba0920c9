"""Open arrivals: each server at each of the scenario's rates, requests arriving whatever the server does.

``python -m runner.open_loop [scenario]`` (``make open``) runs them alone into ``<scenario>-open/open.json``; a full
run whose ``[load] arrival`` is ``"open"`` or ``"both"`` runs them after its sweep into the ``open`` section of
``run.json``, so one run can set a closed loop's percentiles beside an open one's at the same throughput.

Why a second mode at all: every Locust user waits for its answer before it asks again, so a stalled server also
slows its arrivals, and under overload a closed loop under-samples exactly the slow requests (coordinated
omission). Here a schedule drawn in advance (Poisson, or evenly spaced) sets when each request should start, a
pool of ``max_users`` users takes the arrivals as they fall due, and latency is counted from the **scheduled**
start (see loadtests/locustfile.py for the generator and runner/open_figures.py for the figures).

Each step is measured as a closed step is (:func:`runner.sweep.measure_step`): a fresh server, the same pinning,
the server's and the client's CPU over the window, a failed step recorded with its log tail while the others go
on. Rates are the outer loop and servers the inner one, as in the sweep, so drift in the machine falls on every
server alike. Beside each server's steps the file keeps the open-queue model (runner/open_model.py) calibrated on
the server's own steps, so the chart and the report can say where a server's p99 leaves the model.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runner import expected, experiment, open_model, render
from runner.config import RunConfig, ScenarioError, ServerConfig
from runner.numbers import fmt_ms
from runner.processes import CpuPlan
from runner.sweep import Step, measure_step

# How far past the highest rate measured the model's curve is drawn, so the chart shows where the model says a
# server's queue becomes unstable even when no step went that far.
MODEL_REACH = 1.25


def plan(config: RunConfig) -> list[Step]:
    """Every rate for every server: rates outer, servers inner."""
    return [Step(spec, config.load.max_users, rate=rate) for rate in config.load.rates for spec in config.servers]


def step_text(record: Mapping[str, Any]) -> str:
    """One line for a finished open step, as the sweep prints one for a closed step."""
    head = f"  {record['server']:<18} {record['rate']:>7g} req/s offered"
    if record.get("status") != "ok":
        first = (record.get("error") or "failed").splitlines()[0]
        return f"{head}  FAILED: {first}"
    f = record["figures"]
    lat = f["scheduled"]
    flag = f"  ({record['saturated']} saturated)" if record.get("saturated") else ""
    return (
        f"{head}  {f['rps']:7.1f} req/s  p50 {fmt_ms(lat['p50_ms']):>8}  p99 {fmt_ms(lat['p99_ms']):>8} "
        f"from schedule (sent: {fmt_ms(f['sent']['p99_ms'])})  lost {f['lost_pct']:.1f}%{flag}"
    )


def model_curve(
    config: RunConfig, spec: ServerConfig, records: Sequence[Mapping[str, Any]], cores: int
) -> dict[str, Any]:
    """The open-queue model of one server, calibrated on its own steps' CPU per request (as the closed model is
    on its sweep's), from near zero to a little past the highest rate measured."""
    calibration = expected.calibrate(config, records, spec.name)
    system = expected.system(config, spec, calibration, cores)
    high = max(config.load.rates) * MODEL_REACH
    curve = open_model.open_curve(system, high / 100, high)
    return {
        "cpu_per_request_ms": calibration.cpu_per_request_ms,
        "calibrated_on": calibration.steps,
        "capacity_rps": system.max_rps,
        "bottleneck": system.bottleneck.resource,
        "slo_capacity_rps": open_model.capacity_under(system, config.load.slo_p99_ms),
        "curve": [
            {"rate_rps": p.rate_rps, "p50_ms": p.p50_ms, "p99_ms": p.p99_ms, "mean_ms": p.mean_ms, "stable": p.stable}
            for p in curve
        ],
    }


def measure(config: RunConfig, cpus: CpuPlan, folder: Path) -> dict[str, Any]:
    """Every server at every rate, each step on a fresh server. ``folder`` is the run's ``raw/open``."""
    run_dir = folder.parent.parent
    records: list[dict[str, Any]] = []
    steps = plan(config)
    for number, step in enumerate(steps, 1):
        record = measure_step(config, step, run_dir, cpus)
        records.append(record)
        print(f"  [{number}/{len(steps)}]" + step_text(record).removeprefix(" "), flush=True)
    cores = cpus.server_core_count
    load = config.load
    return {
        "rates": list(load.rates),
        "process": load.arrival_process,
        "max_users": load.max_users,
        "max_lateness_s": load.max_lateness_s,
        "slo_p99_ms": load.slo_p99_ms,
        "warmup_s": load.warmup_s,
        "measure_s": load.measure_s,
        "drain_s": load.drain_s,
        "server_cores": cores,
        "measured": time.time(),
        "servers": {
            spec.name: {
                "kind": spec.kind,
                "setup": f"{spec.server}, {spec.describe()}",
                "steps": [r for r in records if r["server"] == spec.name],
                "model": model_curve(config, spec, [r for r in records if r["server"] == spec.name], cores),
            }
            for spec in config.servers
        },
    }


def describe(config: RunConfig) -> str:
    load = config.load
    rates = ", ".join(f"{r:g}" for r in load.rates)
    return (
        f"open arrivals ({load.arrival_process}) at {rates} requests/s on "
        f"{', '.join(s.name for s in config.servers)}: a pool of up to {load.max_users} users, an arrival dropped "
        f"after {load.max_lateness_s:g} s without a free user; latency from the scheduled start"
    )


def check(config: RunConfig) -> None:
    if not config.load.rates:
        raise ScenarioError(f"{config.source} has no [load] rates for open arrivals; add e.g. rates = [10, 20, 40]")


def problems(data: Mapping[str, Any]) -> list[str]:
    """Each server and rate that failed, with the first line of its error (the others' figures are kept)."""
    servers: Mapping[str, Any] = data.get("servers", {})
    return [
        f"open arrivals on {name} at {step['rate']:g} req/s failed: {(step.get('error') or 'failed').splitlines()[0]}"
        for name, server in servers.items()
        for step in server.get("steps", [])
        if step.get("status") != "ok"
    ]


# The experiment, as the full run (runner.cli) and ``python -m runner.open_loop`` both run it.
EXPERIMENT = experiment.Experiment(
    "open",
    render.OPEN,
    "raw/open",
    measure,
    describe,
    "the servers and Locust",
    check,
    problems,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = experiment.parser("python -m runner.open_loop", __doc__ or "", "whose rates and servers")
    args = parser.parse_args(argv)
    return experiment.run(EXPERIMENT, args.scenario, args.results_dir)


if __name__ == "__main__":
    sys.exit(main())
