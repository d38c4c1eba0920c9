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
  (with PostgreSQL, ``pool_size x processes``); the upstream service's ``capacity`` is one for all processes.
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
# The mean response time's tolerance: wider, since a mean is moved by a few slow requests and by the client's own
# milliseconds (HTTP, Locust), which the model does not count.
MEAN_TOLERANCE = 0.25
# The interactive response time law N = X (R + Z) must hold for the users Locust ran; further off than this (in %),
# the step's own figures disagree with each other, which is a problem of the measurement, not of the server.
LITTLE_TOLERANCE_PCT = 10.0
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


def calibrate(
    config: RunConfig, records: Iterable[Mapping[str, Any]], server: str, leave_out: int | None = None
) -> Calibration:
    """The framework's CPU per request, by the service-demand law over the server's unsaturated steps (every
    step record, each repeat its own). ``leave_out`` drops one user level (all its repeats): a step's prediction
    is then calibrated on the server's other steps only, so the model never predicts a step from the step."""
    cpu_s = 0.0
    done = 0
    used = 0
    for step in records:
        if step["server"] != server or step.get("status") != "ok":
            continue
        if leave_out is not None and int(step["users"]) == leave_out:
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
    return model.System(
        demand=model.Demand(think_s=load.think_mean_s, mix=tuple(mix)),
        server=model.Server(
            slots=spec.slots, cpus=max(1, min(cores, spec.processes)), db_connections=waits_capacity(config, spec)
        ),
    )


def waits_capacity(config: RunConfig, spec: ServerConfig) -> int | None:
    """How many of the server's waits can be in progress at once (None: no limit), the model's database resource.

    The database's capacity is per process: the simulated pool (0: none), or a real pool of pool_size connections.
    The upstream service's capacity is one for all the processes (they call the same service), and each process's
    client pool (its max_connections, or the library's own 100) caps its own calls; a client per call has no pool.
    """
    database = config.database
    if database.backend == "http" and spec.driver != SIMULATED_DRIVER:
        upstream = config.upstream
        limits = [upstream.capacity] if upstream.capacity > 0 else []
        if spec.driver is not None and not spec.driver.endswith("-per-request"):
            per_process = upstream.aiohttp_limit if spec.driver == "aiohttp" else upstream.httpx_limits[0]
            limits.append(per_process * spec.processes)
        return min(limits) if limits else None
    real = database.backend == "postgres" and spec.driver != SIMULATED_DRIVER
    capacity = database.pool_size if real else database.capacity
    return capacity * spec.processes if capacity > 0 else None


@dataclass(frozen=True)
class Expectation:
    """One step's measurement beside the model's."""

    prediction: model.Prediction
    calibration: Calibration
    measured_rps: float | None
    measured_mean_ms: float | None
    rps_interval: tuple[float, float] | None
    db_connections: int | None = None
    # The model's service time S (waits plus CPU, no queueing), ms: what the handler alone should take.
    prediction_service_ms: float = math.nan
    # N = X (R + Z) over this step's own figures, in % (see little_error_pct); None where it cannot be computed.
    little_error_pct: float | None = None
    # Whether N lies inside the law's value over the 95% interval of the window's count: then a gap is chance.
    little_within_noise: bool = False
    # The model's service time of each request class (ms) and the mix's weights, to re-weigh it by the classes a
    # window's sample actually held.
    class_service_ms: tuple[tuple[str, float, float], ...] = ()

    @property
    def little_off(self) -> bool:
        """The step's figures break N = X (R + Z) by more than LITTLE_TOLERANCE_PCT, beyond what chance explains."""
        error = self.little_error_pct
        return error is not None and abs(error) > LITTLE_TOLERANCE_PCT and not self.little_within_noise

    @property
    def past_knee(self) -> bool:
        """Beyond the model's knee, where throughput can disagree with the model as well as response time."""
        return self.prediction.users > self.prediction.knee_users

    @property
    def mean_ratio(self) -> float | None:
        """Measured mean response time over the model's."""
        if self.measured_mean_ms is None or not self.prediction.model_mean_ms > 0:
            return None
        return self.measured_mean_ms / self.prediction.model_mean_ms

    @property
    def mean_outside(self) -> bool:
        """The mean response time further from the model's than MEAN_TOLERANCE."""
        return self.mean_ratio is not None and abs(self.mean_ratio - 1) > MEAN_TOLERANCE

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
        prediction_service_ms=system.demand.service_s * 1000,
        class_service_ms=tuple((c.name, c.weight, c.service_s * 1000) for c in system.demand.mix),
        little_error_pct=little_error_pct(record, users, system.demand.think_s) if ok else None,
        little_within_noise=ok and _little_within_noise(record, users, system.demand.think_s),
    )


def _little_within_noise(record: Mapping[str, Any], users: int, think_s: float) -> bool:
    """N inside X (R + Z) taken over the exact 95% interval of the window's completions: a few completions (5
    users thinking 5 s finish about ten requests in a 10 s window) cannot show the law broken."""
    figures = record.get("figures") or {}
    window, mean = figures.get("window_s"), (figures.get("latency") or {}).get("mean_ms")
    done = (figures.get("completed_in_window") or 0) + (figures.get("failed_in_window") or 0)
    if not (is_finite(window) and is_finite(mean)):
        return False
    interval = rate_interval(int(done), float(window))
    if interval is None:
        return False
    cycle = float(mean) / 1000 + think_s
    return interval[0] * cycle <= users <= interval[1] * cycle


def little_error_pct(record: Mapping[str, Any], users: int, think_s: float) -> float | None:
    """How far the step's own figures are from the interactive response time law, N = X (R + Z), in %.

    Each of N users alternates a request (R) and a think (Z), so the completions per second X must be N / (R + Z)
    whatever the server. X counts every completion in the window (failures too: their users cycled as well), R is
    the mean response time of the requests sent in it. A step far off measured something else than N users
    cycling: users that never started, a client too busy to send on time, requests left unanswered (missing from R).
    """
    figures = record.get("figures") or {}
    window, mean = figures.get("window_s"), (figures.get("latency") or {}).get("mean_ms")
    done = (figures.get("completed_in_window") or 0) + (figures.get("failed_in_window") or 0)
    if not (is_finite(window) and window > 0 and is_finite(mean) and users > 0):
        return None
    rate = done / float(window)
    return (rate * (float(mean) / 1000 + think_s) - users) / users * 100
