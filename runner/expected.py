"""What the queueing model expects of each step of a run: the model's inputs, taken from the run itself.

:mod:`runner.model` is pure arithmetic; this module decides what goes into it, because that is where a model
can be made to agree with anything. The rule is to put in only what the scenario states or what a *different*
measurement than the one being predicted shows:

* **Waits** are the scenario's own: the simulated database sleeps exactly that long (plus its seeded jitter,
  which averages out). A page waits ``user_lookup_ms + listing_ms``, a short request ``short_query_ms``.
* **CPU per request** is the scenario's app work plus what the framework, the server and HTTP cost, which no
  scenario states. That cost is measured, with the service-demand law (CPU seconds used / requests completed),
  pooled over the server's steps whose CPU stayed below :data:`CALIBRATION_MAX_CPU_PCT`: so the CPU a request
  needs is learned where the CPU was not the limit, and the throughput where it is remains a prediction.
* **Slots** come from the server's configuration (``ServerConfig.slots``); **cores** are the ones the server
  was pinned to (or the machine's when pinning was off), at most one per process, since a Python process runs
  its Python code on one core at a time; the **database capacity** is per process, so ``capacity x processes``
  (with PostgreSQL, ``pool_size x processes``).
* **Think time** is the mean of Locust's uniform think time; the mix is the scenario's task weights.

Efficiency is measured throughput over the model's: 1.0 is the model met, below it the server (or the harness)
loses something the model does not know about, and the report explains any step more than
:data:`TOLERANCE` away.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from runner import model
from runner.config import RunConfig, ServerConfig
from runner.numbers import is_finite, is_number
from runner.stats import rate_interval
from simdb.database import SIMULATED_DRIVER

# Steps whose server CPU was at or above this share of its cores are left out of the CPU calibration.
CALIBRATION_MAX_CPU_PCT = 70.0
# The bar: a step whose throughput is further than this from the model is explained in the report.
TOLERANCE = 0.15
# Two capacities within this factor of each other both shape the queue; the one-station curve sees only one.
NEAR_LIMITS = 1.5
# When no step can calibrate the framework's CPU cost, this is assumed (ms per request; about what Flask and
# FastAPI measured here) and the report says so.
FALLBACK_OVERHEAD_MS = 1.5


@dataclass(frozen=True)
class Calibration:
    """The framework's CPU cost per request for one server, and where it came from."""

    overhead_ms: float
    steps: int  # how many steps it was pooled over; 0 means the fallback was used
    cpu_per_request_ms: float  # the mix's mean CPU per request, app work included


def server_cores(config: RunConfig, metadata: Mapping[str, Any]) -> int:
    """Cores the server could use: those it was pinned to, or all of the machine's when pinning was off or could
    not be done (runner.processes.plan_cpus records either as a note that starts "not pinned")."""
    pinned = str(metadata.get("cpu_pinning", "")).startswith("server pinned")
    if config.run.pin_cpus and pinned:
        return config.run.server_cores
    return int(metadata.get("cpu_count") or 1)


def _app_work_mean_ms(config: RunConfig) -> float:
    load = config.load
    return load.page_weight * config.workload.app_work_ms / (load.page_weight + load.short_weight)


def calibrate(config: RunConfig, records: Iterable[Mapping[str, Any]], server: str) -> Calibration:
    """The framework's CPU per request, by the service-demand law over the server's unsaturated steps (every
    step record, each repeat its own)."""
    cpu_s = 0.0
    done = 0
    used = 0
    for step in records:
        if step["server"] != server or step.get("status") != "ok":
            continue
        cpu_pct, figures = step.get("server_cpu_pct"), step.get("figures") or {}
        completed, window = figures.get("completed_in_window"), figures.get("window_s")
        if not (is_finite(cpu_pct) and is_finite(completed) and is_finite(window)):
            continue
        if cpu_pct >= CALIBRATION_MAX_CPU_PCT or completed <= 0:
            continue
        cpu_s += cpu_pct / 100 * window
        done += int(completed)
        used += 1
    app = _app_work_mean_ms(config)
    if done < 20:  # too few requests to say anything; state the fallback instead of guessing from noise
        return Calibration(FALLBACK_OVERHEAD_MS, 0, app + FALLBACK_OVERHEAD_MS)
    per_request = cpu_s / done * 1000
    return Calibration(max(0.0, per_request - app), used, max(per_request, app))


def cpu_ms_per_request(step: Mapping[str, Any]) -> float | None:
    """The server tree's CPU per request completed in the window, in ms (the service-demand law): what a driver or
    an ORM adds shows here, and what a saturated step spent against its calibration."""
    figures = step.get("figures") or {}
    cpu, completed, window = step.get("server_cpu_pct"), figures.get("completed_in_window"), figures.get("window_s")
    if not (is_finite(cpu) and is_number(completed) and is_number(window)) or completed <= 0:
        return None
    return float(cpu) / 100 * float(window) / float(completed) * 1000


def system(config: RunConfig, spec: ServerConfig, calibration: Calibration, cores: int) -> model.System:
    """The model of one server configuration under this run's load, on ``cores`` cores."""
    workload, load = config.workload, config.load
    overhead_s = calibration.overhead_ms / 1000
    mix = []
    if load.page_weight > 0:
        mix.append(
            model.RequestClass(
                "page", load.page_weight, workload.page_wait_ms / 1000, workload.app_work_ms / 1000 + overhead_s
            )
        )
    if load.short_weight > 0:
        mix.append(model.RequestClass("short", load.short_weight, workload.short_query_ms / 1000, overhead_s))
    # The database's capacity per process: the simulated pool (0: none), or a real pool of pool_size connections.
    database = config.database
    real = database.backend == "postgres" and spec.driver != SIMULATED_DRIVER
    capacity = database.pool_size if real else database.capacity
    return model.System(
        demand=model.Demand(think_s=load.think_mean_s, mix=tuple(mix)),
        server=model.Server(
            slots=spec.slots,
            cpus=max(1, min(cores, spec.processes)),
            db_connections=capacity * spec.processes if capacity > 0 else None,
        ),
    )


@dataclass(frozen=True)
class Expectation:
    """One step's measurement beside the model's."""

    prediction: model.Prediction
    calibration: Calibration
    measured_rps: float | None
    measured_mean_ms: float | None
    rps_interval: tuple[float, float] | None
    db_connections: int | None = None

    @property
    def efficiency(self) -> float | None:
        if self.measured_rps is None or self.prediction.model_rps <= 0:
            return None
        return self.measured_rps / self.prediction.model_rps

    @property
    def outside(self) -> bool:
        """Further from the model than the tolerance."""
        return self.efficiency is not None and abs(self.efficiency - 1) > TOLERANCE

    @property
    def within_noise(self) -> bool:
        """The model's throughput lies inside the step's own 95% interval: a count this small cannot tell."""
        if self.rps_interval is None:
            return False
        low, high = self.rps_interval
        return low <= self.prediction.model_rps <= high


def expectation(system: model.System, calibration: Calibration, record: Mapping[str, Any], users: int) -> Expectation:
    """One step's measurement (its combined record, with repeats) beside the model's prediction for it."""
    figures = record.get("figures") or {}
    ok = record.get("status") == "ok"
    rps = figures.get("rps") if ok else None
    mean = (figures.get("latency") or {}).get("mean_ms") if ok else None
    completed, window = figures.get("completed_in_window"), figures.get("window_s")
    interval = (
        rate_interval(int(completed), float(window))
        if ok and isinstance(completed, int) and isinstance(window, int | float)
        else None
    )
    return Expectation(
        prediction=model.predict(system, users),
        calibration=calibration,
        measured_rps=float(rps) if is_finite(rps) else None,
        measured_mean_ms=float(mean) if is_finite(mean) else None,
        rps_interval=interval,
        db_connections=system.server.db_connections,
    )


def _pool_wait(step: Mapping[str, Any]) -> str:
    """The step's measured wait for a pooled connection (from ``Server-Timing``), as a clause; empty without it."""
    server = (step.get("figures") or {}).get("server") or {}
    mean, waited = server.get("pool_mean_ms"), server.get("pool_waited_pct")
    if not (server.get("timed") and is_finite(mean) and is_finite(waited)):
        return ""
    return (
        f"; measured by the server, requests waited {mean:.0f} ms on average for a connection and {waited:.0f}% of "
        "them waited at all"
    )


def explain(e: Expectation, step: Mapping[str, Any], spec: ServerConfig) -> str:  # noqa: PLR0911 (one return per reason)
    """Why a step's throughput is more than TOLERANCE from the model, from what the step itself measured.

    Each reason is stated only when the numbers show it; what the model leaves out is named as such, not
    asserted as the cause.
    """
    p = e.prediction
    eff = e.efficiency
    if eff is None:
        return "not measured"
    if step.get("saturated") == "client":
        return "the client used more than 80% of its core in this step: its latencies and rate are partly its own"
    if e.within_noise and e.rps_interval is not None:
        low, high = e.rps_interval
        return (
            f"the model's {p.model_rps:.2f}/s lies inside this step's own 95% interval ({low:.2f}-{high:.2f}/s): "
            "with so few completions in the window the difference is chance"
        )
    cpu = step.get("server_cpu_pct")
    caps = sorted(p.capacities_rps.items(), key=lambda item: item[1])
    two_close = len(caps) >= 2 and caps[1][1] <= NEAR_LIMITS * caps[0][1]
    if eff < 1 and p.bound_by != "users" and two_close and spec.slots and e.measured_rps:
        held = spec.slots / e.measured_rps * 1000
        modelled = spec.slots / p.capacities_rps["slots"] * 1000 if "slots" in p.capacities_rps else math.nan
        return (
            f"two resources are close to their limits here ({caps[0][0]} {caps[0][1]:.0f}/s, {caps[1][0]} "
            f"{caps[1][1]:.0f}/s), and the model queues for only one: a request holds its slot while it waits for "
            f"the core, so the CPU's queue lengthens the time a slot is held (about {held:.0f} ms measured, "
            f"{modelled:.0f} ms modelled)"
        )
    if eff < 1 and p.bound_by == "database" and e.measured_rps and e.db_connections:
        pool = e.db_connections
        held = pool / e.measured_rps * 1000
        queries = pool / p.capacities_rps["database"] * 1000
        return (
            (
                f"each of the {pool} connections was taken for about {held:.0f} ms per request against "
                f"{queries:.0f} ms of queries: a released connection reaches the next waiting request only when that "
                "request gets to run, after the Python work queued ahead of it (on an event loop, first the rest of "
                "the releasing request's own work; with threads, the GIL), so the pool idles between queries"
            )
            + (f"; the server's CPU was at {cpu:.0f}%" if is_finite(cpu) else "")
            + _pool_wait(step)
        )
    if eff < 1 and p.bound_by == "slots" and spec.slots and e.measured_rps:
        held = spec.slots / e.measured_rps * 1000
        modelled = spec.slots / p.capacities_rps["slots"] * 1000
        return (
            f"the measured rate means each request held a slot for about {held:.0f} ms, not the model's "
            f"{modelled:.0f} ms (waits plus calibrated CPU): time between requests that the model does not count "
            "(accepting and closing connections, workers sharing one core, time the VM's hypervisor takes)"
        )
    busy, connections = step.get("db_connections_max"), e.db_connections
    if eff < 1 and connections and is_finite(busy) and busy >= connections:
        mean = step.get("db_connections_mean")
        share = f", {mean:.1f} on average" if is_finite(mean) else ""
        return (
            f"its database pool was full at times (measured: up to {busy:.0f} of its {connections} connections busy"
            f"{share}), so requests queued for a connection as well as for the core"
            + (f" (CPU at {cpu:.0f}%)" if is_finite(cpu) else "")
            + ": two queues in a row, where the model's curve has one"
            + _pool_wait(step)
        )
    if eff < 1 and is_finite(cpu) and cpu >= 85:
        return (
            f"the server's CPU was at {cpu:.0f}% of its core(s): it is near its CPU limit, where the model's "
            "single-queue curve is optimistic (CPU cost per request also grows with the number of connections)"
        )
    spent, calibrated = cpu_ms_per_request(step), e.calibration.cpu_per_request_ms
    if eff > 1 and p.bound_by == "cpu" and spent is not None and spent < (1 - TOLERANCE) * calibrated:
        return (
            f"its CPU per request in this step was {spent:.1f} ms, against the {calibrated:.1f} ms calibrated on its "
            f"steps below {CALIBRATION_MAX_CPU_PCT:.0f}% CPU, so its core served more requests than the model's "
            "capacity allows: busy, a server spends less CPU per request (fewer idle wake-ups and system calls, "
            "each shared by more requests), which a capacity calibrated on quiet steps does not know"
        )
    if eff < 1:
        return (
            "below the model with CPU to spare and slots free: a cost the model does not count (client, network, "
            "scheduling); see the step's notes"
        )
    return "above the model: the waits or CPU the model assumes are longer than what this step needed"
