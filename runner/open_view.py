"""The typed reading of a saved run's open arrivals and capacity search, for the report, the summary and the chart.

The same data is read whether it sits in a full run's ``run.json`` (sections ``open`` and ``capacity``) or in an
experiment's own ``open.json`` / ``capacity.json``; :class:`runner.view.RunView` hands its sections here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.store import is_ok


def open_records(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every step record of a run's open arrivals and of its capacity search's probes, the very objects the
    document holds (so a copy of the document gives its own, in the same order): their figures come from raw
    files as a sweep step's do, and are recomputed and shipped alike."""
    found: list[dict[str, Any]] = []
    for section, key in (("open", "steps"), ("capacity", "probes")):
        data = doc.get(section)
        if not isinstance(data, Mapping):
            continue
        for server in (data.get("servers") or {}).values():
            for item in server.get(key) or []:
                record = item.get("record", item) if key == "probes" else item
                if isinstance(record, dict):
                    found.append(record)
    return found


# How many times its largest lateness a generator that fell behind can have added to a latency (see
# OpenStep.generator_added_ms).
GENERATOR_MARGIN = 2.0


@dataclass(frozen=True)
class OpenStep:
    """One server at one rate, as measured: the figures report and summary need, None where not measured."""

    server: str
    kind: str
    rate: float
    record: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return is_ok(self.record)

    @property
    def figures(self) -> Mapping[str, Any]:
        figures = self.record.get("figures")
        return figures if isinstance(figures, Mapping) else {}

    def figure(self, key: str) -> float | None:
        """A top-level figure (``rps``, ``offered_rps``, ``lost_pct``, ``p99_all_ms``...), None where absent."""
        value = self.figures.get(key) if self.ok else None
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    def latency(self, key: str, basis: str = "scheduled") -> float | None:
        """``p50_ms``... from the scheduled start (``basis = "scheduled"``) or from the actual send (``"sent"``)."""
        if not self.ok:
            return None
        value = (self.figures.get(basis) or {}).get(key)
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

    @property
    def generator_behind(self) -> bool:
        """The step's load generator fell behind its schedule (the report's ‡)."""
        return self.ok and bool(self.figures.get("generator_behind"))

    @property
    def generator_max_ms(self) -> float:
        """The most the generator handed one arrival out late: the most it can have added to any latency itself."""
        value = self.figures.get("generator_max_ms")
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.inf

    @property
    def generator_added_ms(self) -> float:
        """The most the generator can have added to a latency: nothing where it kept its schedule; where it fell
        behind, GENERATOR_MARGIN times its largest lateness (the lateness itself, and the queue left by the burst
        of arrivals it bunched, which a server below saturation clears in less than that lateness again)."""
        return GENERATOR_MARGIN * self.generator_max_ms if self.generator_behind else 0.0

    def over_target(self, slo_p99_ms: float) -> bool | None:
        """Whether the p99 from the scheduled start (over every arrival: ``p99_all_ms``, a lost arrival slower than
        any answer) is over the target, or over 1% was lost; None where it cannot be told.

        A step whose generator fell behind is read only where the answer does not hang on the generator: its
        lateness only adds to a latency, so a p99 within the target stands; a p99 over it stands only when it is
        over by more than the generator can have added (:attr:`generator_added_ms`). In between, the step is not
        read (None)."""
        if not self.ok:
            return None
        p99 = self.figures.get("p99_all_ms")
        if self.figures.get("p99_all_lost"):
            return True
        if not (isinstance(p99, int | float) and math.isfinite(p99)):
            return None
        if p99 <= slo_p99_ms:
            return False
        if p99 - self.generator_added_ms <= slo_p99_ms:
            return None
        return True

    @property
    def hidden_ms(self) -> float | None:
        """How much of the p99 the actual send hides: the p99 from the schedule less the p99 from the send."""
        scheduled, sent = self.latency("p99_ms"), self.latency("p99_ms", "sent")
        return None if scheduled is None or sent is None else scheduled - sent


@dataclass(frozen=True)
class OpenServer:
    """One server's open steps, in rate order, and its open-queue model as saved beside them."""

    name: str
    kind: str
    setup: str  # "gunicorn, 3 sync workers", as measured
    steps: tuple[OpenStep, ...]
    model: Mapping[str, Any]

    def model_at(self, rate: float) -> Mapping[str, Any] | None:
        """The model's point nearest ``rate`` on the saved curve (None past its last stable point)."""
        curve: list[Mapping[str, Any]] = [p for p in self.model.get("curve", []) if p.get("stable")]
        if not curve or rate > float(curve[-1]["rate_rps"]) * 1.0001:
            return None
        return min(curve, key=lambda p: abs(float(p["rate_rps"]) - rate))

    def leaves_target(self, slo_p99_ms: float) -> OpenStep | None:
        """The first measured rate that is over the target (:meth:`OpenStep.over_target`), skipping steps that
        cannot be told."""
        for step in self.steps:
            if step.over_target(slo_p99_ms):
                return step
        return None

    def untold(self, slo_p99_ms: float) -> list[OpenStep]:
        """The measured steps whose verdict on the target hangs on their load generator, not read."""
        return [s for s in self.steps if s.ok and s.over_target(slo_p99_ms) is None and s.generator_behind]


def open_servers(data: Mapping[str, Any] | None) -> list[OpenServer]:
    """Every server of an open-arrival section, in the order saved."""
    if not isinstance(data, Mapping):
        return []
    out = []
    for name, server in (data.get("servers") or {}).items():
        kind = str(server.get("kind", ""))
        steps = sorted(
            (OpenStep(name, kind, float(r["rate"]), r) for r in server.get("steps", []) if "rate" in r),
            key=lambda s: s.rate,
        )
        out.append(OpenServer(name, kind, str(server.get("setup", kind)), tuple(steps), server.get("model") or {}))
    return out


@dataclass(frozen=True)
class Capacity:
    """One server's capacity search: the number, whether it passed twice, the model's bracket and every probe."""

    server: str
    kind: str
    capacity_rps: float | None
    confirmed: bool
    bound: str | None
    model_capacity_rps: float | None
    bracket: tuple[float, float] | None
    probes: tuple[Mapping[str, Any], ...]
    # Rates failed only because the load generator fell behind in every try: the client bounds the number.
    client_limited: tuple[float, ...] = ()

    @property
    def within_bracket(self) -> bool | None:
        """Whether the measured capacity fell inside the bracket the model started from (None without both)."""
        if self.capacity_rps is None or self.bracket is None:
            return None
        return self.bracket[0] <= self.capacity_rps <= self.bracket[1]


def capacities(data: Mapping[str, Any] | None) -> list[Capacity]:
    if not isinstance(data, Mapping):
        return []
    out = []
    for name, server in (data.get("servers") or {}).items():
        bracket = server.get("bracket")
        out.append(
            Capacity(
                server=name,
                kind=str(server.get("kind", "")),
                capacity_rps=server.get("capacity_rps"),
                confirmed=bool(server.get("confirmed")),
                bound=server.get("bound"),
                model_capacity_rps=server.get("model_capacity_rps"),
                bracket=(float(bracket[0]), float(bracket[1])) if bracket else None,
                probes=tuple(server.get("probes") or ()),
                client_limited=tuple(float(rate) for rate in server.get("client_limited") or ()),
            )
        )
    return out


def headline(data: Mapping[str, Any]) -> str:
    """The sentence that heads a report: each server's capacity within the target, or why there is none."""
    slo = data.get("slo_p99_ms")
    parts = []
    for name, server in (data.get("servers") or {}).items():
        capacity = server.get("capacity_rps")
        if capacity is None or server.get("bound"):
            parts.append(f"{name}: {server.get('bound') or 'no capacity found'}")
        else:
            limited = " (a rate above it failed only on the load generator: a lower bound)"
            parts.append(f"{name}: {capacity:.1f} requests/s" + (limited if server.get("client_limited") else ""))
    return f"Capacity within p99 {slo:g} ms (open arrivals, from the scheduled start): " + "; ".join(parts) + "."


def summary_rows(open_data: Mapping[str, Any] | None, capacity_data: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One ``summary.csv`` row per open step (``arrival = open``): p50/p95/p99 from the scheduled start in the
    usual columns, the same from the actual send beside them, what was lost, and the server's capacity."""
    found = {c.server: c.capacity_rps for c in capacities(capacity_data) if c.confirmed}
    rows = []
    for server in open_servers(open_data):
        for step in server.steps:
            record = step.record
            f = step.figures
            scheduled = f.get("scheduled") or {}
            sent = f.get("sent") or {}
            row: dict[str, Any] = {
                "server": step.server,
                "kind": step.kind,
                "workers": record.get("workers"),
                "users": record.get("users"),
                "status": record.get("status"),
                "arrival": "open",
                "rate": step.rate,
                "offered_rps": f.get("offered_rps"),
                "requests": scheduled.get("requests"),
                "failures": f.get("failed"),
                "unfinished": f.get("unfinished"),
                "dropped": f.get("dropped"),
                "lost_pct": f.get("lost_pct"),
                # Blank when too few arrivals for a p99, "lost" when lost arrivals reach its rank.
                "p99_all_ms": "lost" if f.get("p99_all_lost") else f.get("p99_all_ms"),
                "rps": f.get("rps"),
                "client_cpu_pct": f.get("client_cpu_pct"),
                "server_cpu_pct": record.get("server_cpu_pct"),
                "server_rss_mb": record.get("server_rss_mb"),
                "proxy_cpu_pct": record.get("proxy_cpu_pct"),
                "upstream_cpu_pct": record.get("upstream_cpu_pct"),
                "saturated": record.get("saturated", ""),
                "generator_p99_ms": f.get("generator_p99_ms"),
                "capacity_rps": found.get(step.server),
            }
            for key in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms", "min_ms"):
                row[key] = scheduled.get(key)
            for key in ("p50_ms", "p95_ms", "p99_ms"):
                row[f"sent_{key}"] = sent.get(key)
            rows.append(row)
    return rows
