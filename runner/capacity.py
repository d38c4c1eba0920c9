"""Capacity under a latency target: the highest rate of open arrivals each server sustains with its p99, from the
scheduled start, under ``[load] slo_p99_ms``.

``python -m runner.capacity [scenario]`` (``make capacity``) runs it alone into ``<scenario>-capacity/capacity.json``;
a full run with open arrivals runs it after the open steps into the ``capacity`` section of ``run.json``.

The number people plan with is not a curve but "how many requests per second within p99 500 ms". The search:

1. **Bracket by the model.** The open-queue model (runner/open_model.py) of each server, with the framework's CPU
   per request at its stated fallback (nothing has been measured yet), gives a capacity under the target; the
   bracket around it is wide on purpose (:func:`runner.open_model.bracket`), because the model is approximate
   both ways.
2. **Check the bracket by measurement.** Its low end must pass and its high end fail; a low end that fails is
   halved, a high end that passes doubled, a few times at most, so a model that is wrong by more than the bracket
   still finds the capacity, and one that is wrong beyond that says so instead of reporting a bound as a result.
3. **Narrow by bisection** until the passing and failing rates are within ``RESOLUTION`` of each other.
4. **Confirm** the highest passing rate with a second, fresh measurement; a confirmation that fails steps the
   answer down by ``RESOLUTION``, where two fresh measurements must pass, so the reported capacity passed twice
   and never failed.

A rate **passes** when its step measured a full window (long enough for ``MIN_ARRIVALS``), its generator kept the
schedule, and the p99 over *every* arrival scheduled in the window (a failed, dropped or unanswered one counting as
slower than any answer: ``p99_all_ms``) is within the target. A server cannot pass by failing fast or shedding
the slow requests.

A measurement whose load generator fell behind its schedule and missed the target says nothing about the server:
the generator's lateness, and the burst of arrivals it bunched, may be what missed it. It is **inconclusive**,
listed as such, and the rate is measured again, up to ``INCONCLUSIVE_TRIES`` times in all (one that met the target
all the same passes: lateness only adds to a latency counted from the schedule). Only a
rate whose every try was generator-limited counts as a failure, named as the client's (``client_limited``): then
the client, not the server, bounds the number, and the result says so.

Every measurement is an ordinary open step (:func:`runner.sweep.measure_step`, a fresh server each time) with its
raw files kept, and every probe is listed with its verdict, so a reader can see how the number was found.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from runner import expected, experiment, open_model, render
from runner.config import RunConfig, ServerConfig
from runner.numbers import DASH, fmt_ms, fmt_steal
from runner.processes import CpuPlan
from runner.sweep import Step, measure_step

# Bisection stops when the failing rate is within this share of the passing one: finer than a step's own
# sampling noise would be spurious precision (a 12 s window at 30 requests/s holds ~360 requests, enough for a
# p99 at all but with an interval of several ranks).
RESOLUTION = 0.10
# How many times the bracket's low end may be halved (or its high end doubled) before the search gives up.
WIDEN = 3
# How many times a failed confirmation may step the answer down.
CONFIRM_TRIES = 3
# A probe's window is long enough for this many arrivals (and never shorter than the scenario's window): a p99
# needs 100, and with 200 it is the second slowest, so one odd request does not decide a verdict alone.
MIN_ARRIVALS = 200
# How many times one rate is measured while its load generator keeps falling behind (a stall of the client's core,
# such as a burst of the VM's steal time, or a client short of CPU) before the rate counts as failed.
INCONCLUSIVE_TRIES = 3
GENERATOR_BEHIND = "the load generator fell behind its schedule (client-limited)"


def probe_config(config: RunConfig, rate: float) -> RunConfig:
    """The scenario with a window long enough for MIN_ARRIVALS at ``rate``."""
    window = max(config.load.measure_s, MIN_ARRIVALS / rate)
    return replace(config, load=replace(config.load, measure_s=round(window, 1)))


def passes(record: Mapping[str, Any], slo_p99_ms: float) -> tuple[bool, str]:
    """Whether one measured rate meets the target, and why, in a few words the report can quote.

    A window whose load generator fell behind passes when its p99 is within the target all the same (lateness only
    adds to a latency counted from the schedule); a miss there is not the server's to own (see :func:`inconclusive`).
    """
    if record.get("status") != "ok":
        return False, "failed: " + (record.get("error") or "step failed").splitlines()[0]
    ok, why = _judged(record["figures"], slo_p99_ms)
    if record["figures"].get("generator_behind"):
        return (
            (True, why + ", though the load generator fell behind")
            if ok
            else (False, GENERATOR_BEHIND + _steal(record))
        )
    return ok, why


def _judged(figures: Mapping[str, Any], slo_p99_ms: float) -> tuple[bool, str]:
    p99 = figures.get("p99_all_ms")
    if figures.get("p99_all_lost"):
        return False, f"over 1% of arrivals lost ({figures['lost_pct']:.1f}%)"
    if not (isinstance(p99, float | int) and math.isfinite(p99)):
        return False, "too few arrivals for a p99"
    if p99 > slo_p99_ms:
        return False, f"p99 {fmt_ms(p99)} over the target"
    return True, f"p99 {fmt_ms(p99)} within the target"


def _steal(record: Mapping[str, Any]) -> str:
    """The VM's steal per core over a step, as a clause for a generator that fell behind (empty when not recorded)."""
    steal = fmt_steal(record.get("steal_s"))
    return "" if steal == DASH else f"; the VM's steal over the step: {steal}"


def inconclusive(record: Mapping[str, Any], slo_p99_ms: float) -> bool:
    """A measured window that says nothing about the server: its load generator did not keep the schedule and the
    rate missed the target, which the generator's lateness (and the burst of arrivals it bunched) may have caused."""
    return (
        record.get("status") == "ok"
        and bool((record.get("figures") or {}).get("generator_behind"))
        and not passes(record, slo_p99_ms)[0]
    )


Probe = Callable[[float], dict[str, Any]]


def search(low: float, high: float, probe: Probe, slo_p99_ms: float) -> dict[str, Any]:
    """The search of the module's docstring over one server, given where to start and how to measure a rate.

    ``probe(rate)`` measures one rate and returns its step record. Returns the capacity (None when even the
    lowest rate tried fails, or the highest passes: then ``bound`` says which way and the figure is a bound, not
    a capacity), whether it was confirmed, and every probe with its verdict.
    """
    probes: list[dict[str, Any]] = []
    passed: dict[float, int] = {}
    client_limited: list[float] = []

    def measure(rate: float, purpose: str) -> bool:
        """One verdict on one rate: measured again while the generator falls behind, up to INCONCLUSIVE_TRIES.
        An inconclusive try is listed with ``passed`` None; it neither passes nor fails the rate."""
        for attempt in range(1, INCONCLUSIVE_TRIES + 1):
            record = probe(rate)
            ok, why = passes(record, slo_p99_ms)
            verdict: bool | None = ok
            if inconclusive(record, slo_p99_ms):
                if attempt < INCONCLUSIVE_TRIES:
                    verdict, why = None, f"inconclusive, measured again: {why}"
                else:
                    client_limited.append(rate)
                    why = f"{why} in {attempt} measurements in a row"
            figures = record.get("figures") or {}
            probes.append(
                {
                    "rate": rate,
                    "purpose": purpose,
                    "passed": verdict,
                    "why": why,
                    "p99_all_ms": figures.get("p99_all_ms"),
                    "lost_pct": figures.get("lost_pct"),
                    "rps": figures.get("rps"),
                    "record": record,
                }
            )
            if verdict is not None:
                passed[rate] = passed.get(rate, 0) + ok
                return ok
        return False  # not reached: the last try always gives a verdict

    result: dict[str, Any] = {
        "capacity_rps": None,
        "confirmed": False,
        "bound": None,
        "probes": probes,
        "client_limited": client_limited,
    }
    for _ in range(WIDEN + 1):
        if measure(low, "low end of the bracket"):
            break
        high, low = low, low / 2
    else:
        result["bound"] = f"below {low * 2:.1f} requests/s: every rate tried failed the target"
        return result
    for _ in range(WIDEN + 1):
        if not measure(high, "high end of the bracket"):
            break
        low, high = high, high * 2
    else:
        result["bound"] = f"at least {low:.1f} requests/s: every rate tried passed"
        result["capacity_rps"] = low
        return result
    while high - low > RESOLUTION * low:
        middle = (low + high) / 2
        if measure(middle, "bisection"):
            low = middle
        else:
            high = middle
    return _confirm(low, high, measure, passed, result)


def _confirm(
    low: float,
    high: float,
    measure: Callable[[float, str], bool],
    passed: Mapping[float, int],
    result: dict[str, Any],
) -> dict[str, Any]:
    """The search's last phase. Confirmed: two passes at one rate and no failure there. The bisection's answer has
    passed once; a rate stepped down to after a failed confirmation is new, and must pass twice itself."""
    for _ in range(CONFIRM_TRIES):
        while passed.get(low, 0) < 2:
            if not measure(low, "confirmation"):
                break
        else:
            result.update(capacity_rps=low, confirmed=True, bracket_measured=[low, high])
            return result
        high, low = low, low * (1 - RESOLUTION)
    result["bound"] = f"unconfirmed: no rate down to {high:.1f} requests/s passed twice"
    return result


def model_bracket(config: RunConfig, spec: ServerConfig, cores: int) -> dict[str, Any]:
    """Where the search starts for one server: the model's capacity under the target and the bracket around it,
    with the framework's CPU per request at its fallback (nothing measured yet), as the file records."""
    calibration = expected.calibrate(config, [], spec.name)
    system = expected.system(config, spec, calibration, cores)
    predicted = open_model.capacity_under(system, config.load.slo_p99_ms)
    if predicted is None:
        # The model says even an idle server misses the target; measurement may disagree, so the search still
        # runs, from a quarter of the server's capacity up to all of it.
        low, high = system.max_rps / 4, system.max_rps
    else:
        low, high = open_model.bracket(system, config.load.slo_p99_ms)
    return {
        "model_capacity_rps": predicted,
        "bracket": [low, high],
        "cpu_per_request_ms": calibration.cpu_per_request_ms,
        "bottleneck": system.bottleneck.resource,
    }


def measure(config: RunConfig, cpus: CpuPlan, folder: Path) -> dict[str, Any]:
    """The search on every server of the scenario, one after another, each probe on a fresh server."""
    run_dir = folder.parent.parent
    cores = cpus.server_core_count
    slo = config.load.slo_p99_ms
    servers: dict[str, Any] = {}
    for spec in config.servers:
        start = model_bracket(config, spec, cores)
        low, high = start["bracket"]
        attempts: dict[float, int] = {}

        def probe(rate: float, spec: ServerConfig = spec, attempts: dict[float, int] = attempts) -> dict[str, Any]:
            attempts[rate] = attempts.get(rate, 0) + 1
            step = Step(spec, config.load.max_users, attempts[rate], round(rate, 3), "capacity")
            record = measure_step(probe_config(config, rate), step, run_dir, cpus)
            ok, why = passes(record, slo)
            said = "inconclusive" if inconclusive(record, slo) else "pass" if ok else "FAIL"
            print(f"  {spec.name:<18} {rate:8.1f} req/s  {said}: {why}", flush=True)
            return record

        found = search(low, high, probe, slo)
        servers[spec.name] = {"kind": spec.kind, "setup": f"{spec.server}, {spec.describe()}", **start, **found}
        capacity = found["capacity_rps"]
        verdict = f"{capacity:.1f} requests/s" if capacity is not None else "none found"
        print(f"  {spec.name}: {verdict} within p99 {slo:g} ms" + (f" ({found['bound']})" if found["bound"] else ""))
    return {
        "slo_p99_ms": slo,
        "resolution": RESOLUTION,
        "process": config.load.arrival_process,
        "max_users": config.load.max_users,
        "measure_s": config.load.measure_s,
        "server_cores": cores,
        "measured": time.time(),
        "servers": servers,
    }


def describe(config: RunConfig) -> str:
    return (
        f"capacity search: the highest rate of open arrivals ({config.load.arrival_process}) each server sustains "
        f"with p99 from the scheduled start under {config.load.slo_p99_ms:g} ms, on "
        f"{', '.join(s.name for s in config.servers)}"
    )


def problems(data: Mapping[str, Any]) -> list[str]:
    """A server whose search found no confirmed capacity, with the reason; a rate failed because the load generator
    fell behind in every try, since then the client, not the server, bounds the number."""
    found: list[str] = []
    for name, server in (data.get("servers") or {}).items():
        if not server.get("confirmed"):
            found.append(f"capacity of {name}: {server.get('bound') or 'not found'}")
        for rate in sorted(set(server.get("client_limited") or ())):
            found.append(
                f"capacity of {name}: {rate:.1f} requests/s failed only because the load generator fell behind in "
                f"{INCONCLUSIVE_TRIES} measurements in a row: the client bounds the number found"
            )
    return found


EXPERIMENT = experiment.Experiment(
    "capacity",
    render.CAPACITY,
    "raw/capacity",
    measure,
    describe,
    "the servers and Locust",
    problems=problems,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = experiment.parser("python -m runner.capacity", __doc__ or "", "whose servers and target")
    args = parser.parse_args(argv)
    return experiment.run(EXPERIMENT, args.scenario, args.results_dir)


if __name__ == "__main__":
    sys.exit(main())
