"""What a database layer costs: each PostgreSQL configuration's CPU per request against its simulated twin, and
whether the differences people expect appeared in this run.

Three differences are expected, each stated before it is looked for: a real driver costs CPU over the simulated
database (the protocol, the rows, the pool); the ORM costs more than a raw driver under the same server; and the
async ORM adds more than the sync one (an ``AsyncSession`` runs the sync ORM inside a greenlet bridge). Each is
judged **paired, level by level**: at every user level where both configurations were measured below the
calibration's CPU limit, the one's CPU per request less the other's. CPU per request falls as load rises (fixed
costs are shared by more requests), so comparing two configurations at different loads, or pooled over different
steps, would mistake that trend for a difference. A difference *appeared* when it has the expected sign at every
such level (at least two), the *opposite appeared* when it has the other sign at every one, and otherwise it is
*not established*: it changed sign from one level to the next, so it is smaller than what moves between steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from runner.config import DRIVER_TEXT, ServerConfig
from runner.expected import CALIBRATION_MAX_CPU_PCT, cpu_ms_per_request
from runner.numbers import DASH, fmt, is_finite
from runner.view import RunView
from simdb.database import ORM_DRIVER, SIMULATED_DRIVER

# The fewest paired levels from which a sign is taken as a finding rather than one step's noise.
MIN_LEVELS = 2

Verdict = str  # "appeared", "opposite", "not established"


@dataclass(frozen=True)
class Difference:
    """One expected difference, its per-level values (ms of CPU per request) and what they show."""

    claim: str
    per_level: tuple[tuple[int, float], ...]
    # Over the levels compared together: each configuration's CPU pooled over them (service-demand law).
    overall_ms: float | None
    # For a driver against its simulated twin: the driver's configuration, whose "added" this is.
    added_to: str | None = None

    @property
    def verdict(self) -> Verdict:
        values = [value for _, value in self.per_level]
        if len(values) >= MIN_LEVELS and all(v > 0 for v in values):
            return "appeared"
        if len(values) >= MIN_LEVELS and all(v < 0 for v in values):
            return "opposite"
        return "not established"

    def sentence(self) -> str:
        levels = ", ".join(f"{users} users {value:+.2f} ms" for users, value in self.per_level)
        overall = f" ({self.overall_ms:+.2f} ms over those levels together)" if self.overall_ms is not None else ""
        if not self.per_level:
            return (
                f"**{self.claim}: not established.** No user level had both configurations below "
                f"{CALIBRATION_MAX_CPU_PCT:.0f}% CPU, where CPU per request can be compared."
            )
        if self.verdict == "appeared":
            return f"**{self.claim}: appeared** at every level compared ({levels}){overall}."
        if self.verdict == "opposite":
            return (
                f"**{self.claim}: the opposite appeared** at every level compared ({levels}){overall}. Nothing this "
                "run measured explains it; it is reported, not explained away."
            )
        if len(self.per_level) < MIN_LEVELS:
            return (
                f"**{self.claim}: not established.** Only one level could be compared ({levels}){overall}; one "
                "step's CPU per request is not enough to settle a sign."
            )
        return (
            f"**{self.claim}: not established.** The difference changed sign from level to level ({levels})"
            f"{overall}: it is smaller than what CPU per request moves between steps in this run."
        )


def _machinery(spec: ServerConfig) -> ServerConfig:
    """The configuration without its name and driver: two servers with the same machinery differ only in how
    they reach the database."""
    return replace(spec, name="", driver=SIMULATED_DRIVER)


def twin(view: RunView, spec: ServerConfig, driver: str) -> ServerConfig | None:
    """The run's server with ``spec``'s machinery on ``driver``, if there is one."""
    return next((s for s in view.servers if s.driver == driver and _machinery(s) == _machinery(spec)), None)


def _quiet_cpu(view: RunView, name: str, users: int) -> float | None:
    """CPU ms per request of one step, if measured below the calibration's CPU limit."""
    record = view.ok_step(name, users)
    if record is None or not is_finite(record.get("server_cpu_pct")):
        return None
    if float(record["server_cpu_pct"]) >= CALIBRATION_MAX_CPU_PCT:
        return None
    return cpu_ms_per_request(record)


def _paired(
    view: RunView, names: tuple[str, ...], combine: Callable[..., float]
) -> tuple[tuple[tuple[int, float], ...], float | None]:
    """``combine`` of the named servers' CPU per request at each level where every one of them was quiet, and
    over all those levels together (each server's CPU pooled over the same levels, by the service-demand law)."""
    pairs = []
    cpu_s = dict.fromkeys(names, 0.0)
    done = dict.fromkeys(names, 0)
    for users in view.users:
        values = [_quiet_cpu(view, name, int(users)) for name in names]
        if any(v is None for v in values):
            continue
        pairs.append((int(users), combine(*values)))
        for name in names:
            record = view.by_level[(name, int(users))]
            cpu_s[name] += float(record["server_cpu_pct"]) / 100 * float(record["figures"]["window_s"])
            done[name] += int(record["figures"]["completed_in_window"])
    overall = combine(*(cpu_s[n] / done[n] * 1000 for n in names)) if pairs else None
    return tuple(pairs), overall


def _calibrated(view: RunView, name: str) -> float | None:
    """The CPU per request the model uses (None where it fell back to an assumption)."""
    calibration = view.calibrations[name]
    return calibration.cpu_per_request_ms if calibration.steps else None


def differences(view: RunView) -> list[Difference]:
    """The expected differences this run can look for, in a fixed order: each driver against its simulated twin,
    each ORM against each raw driver with its machinery, then the async ORM's addition against the sync one's."""

    def minus(a: float, b: float) -> float:
        return a - b

    found = []
    real = [s for s in view.servers if s.driver not in (None, SIMULATED_DRIVER)]
    for spec in real:
        base = twin(view, spec, SIMULATED_DRIVER)
        if base is not None:
            names = (spec.name, base.name)
            claim = f"{spec.name} ({DRIVER_TEXT[spec.driver or '']}) costs more CPU than {base.name}"
            found.append(Difference(claim, *_paired(view, names, minus), added_to=spec.name))
    for orm in (s for s in real if s.driver == ORM_DRIVER):
        for raw in (s for s in real if s.driver != ORM_DRIVER and _machinery(s) == _machinery(orm)):
            names = (orm.name, raw.name)
            claim = f"the ORM ({orm.name}) costs more CPU than the raw driver under the same server ({raw.name})"
            found.append(Difference(claim, *_paired(view, names, minus)))
    orms = {s.kind: s for s in real if s.driver == ORM_DRIVER}
    bases = {kind: twin(view, spec, SIMULATED_DRIVER) for kind, spec in orms.items()}
    sync_base, async_base = bases.get("sync"), bases.get("async")
    if sync_base is not None and async_base is not None:
        four = (orms["async"].name, async_base.name, orms["sync"].name, sync_base.name)

        def added(async_orm: float, async_sim: float, sync_orm: float, sync_sim: float) -> float:
            return (async_orm - async_sim) - (sync_orm - sync_sim)

        claim = (
            f"the async ORM ({orms['async'].name}) adds more CPU over its simulated twin than the sync ORM "
            f"({orms['sync'].name}) over its own"
        )
        found.append(Difference(claim, *_paired(view, four, added)))
    return found


def driver_section(view: RunView) -> list[str]:
    """The section, for a PostgreSQL run with at least one configuration that has something to compare with;
    nothing otherwise."""
    if view.config.database.backend != "postgres":
        return []
    found = differences(view)
    if not found:
        return []
    lines = [
        "## What the database layer costs",
        "",
        "CPU per request is the server's CPU over the requests it completed, pooled over its steps below "
        f"{CALIBRATION_MAX_CPU_PCT:.0f}% CPU (what the model calibrates from). *Added* is over the configuration "
        "with the same server and workers on the simulated database, in this run, pooled over the user levels "
        "where both were below that: CPU per request falls as load rises, so two configurations are compared at "
        "the same loads, never over different sets of steps. Each expected difference is then judged level by "
        "level, at the user levels where both configurations were below "
        f"{CALIBRATION_MAX_CPU_PCT:.0f}% CPU: *appeared* when it has the expected sign at every one of them (at "
        f"least {MIN_LEVELS}), *the opposite appeared* when it has the other sign at every one, *not established* "
        "otherwise.",
        "",
        "| configuration | side | database | CPU ms / request | simulated twin | added |",
        "|---|---|---|---:|---|---:|",
    ]
    added_to = {d.added_to: d.overall_ms for d in found if d.added_to is not None}
    for spec in view.servers:
        own = _calibrated(view, spec.name)
        base = twin(view, spec, SIMULATED_DRIVER) if spec.driver != SIMULATED_DRIVER else None
        if spec.driver == SIMULATED_DRIVER:
            added = "baseline"
        else:
            value = added_to.get(spec.name)
            added = DASH if value is None else f"{value:+.2f}"
        lines.append(
            f"| {spec.name} | {spec.kind} | {DRIVER_TEXT.get(spec.driver or '', DASH)} | {fmt(own, 2)} "
            f"| {base.name if base is not None else DASH} | {added} |"
        )
    lines.append("")
    for difference in found:
        lines += [f"- {difference.sentence()}"]
    return [*lines, ""]
