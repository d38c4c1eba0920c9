"""Two runs of one scenario compared step by step: whether they may be compared at all, and a verdict on each
difference. Pure: two :class:`~runner.view.RunView` in, a :class:`Comparison` out; :mod:`runner.compare_render`
writes it as tables, markdown or JSON, and :mod:`runner.compare` is the command.

A comparison only means something if both runs measured the same thing, so it is refused (:class:`CompareError`,
naming the file and the difference) for runs of different scenarios, runs of a scenario file that changed in
between (its sha256 is recorded), runs with different settings (think time, workload, users, servers, ...), and
anything that is not a run folder of a format version this tool reads. A step measured in only one of the runs
(failed or never reached) is listed as such, not compared.

Per (server, user level) a row holds throughput and p95 of A and B, the ratio B/A, and a verdict. A figure's
*spread* is how far it could have moved by chance (:func:`spread`): once steps are repeated, the min..max of the
repeats; until then, the 95% interval of the step's own sample (an exact Poisson interval on the window's
completion count for throughput, a distribution-free order-statistic interval for p95, see ``runner.stats``).

A difference is called "not significant" when the two spreads overlap. That rule is **conservative**: two 95%
intervals can overlap a little while the difference between the figures is significant at the 5% level, so it
misses some real differences rather than announce chance ones. It is *not* conservative about what the intervals
leave out: one window's sampling noise is not the run-to-run variation of a shared machine, which only repeated
runs measure. A run recorded before intervals were kept has no spread for p95; its verdict says so ("spread
unknown") instead of guessing one.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner import store
from runner.numbers import is_finite, is_number
from runner.stats import CONFIDENCE, rate_interval
from runner.store import is_ok
from runner.view import RunView

NOT_SIGNIFICANT = "not significant"
SPREAD_UNKNOWN = "spread unknown"
NO_FIGURE = "no figure"
SIGNIFICANT = ("B higher", "B lower")
# Short reasons a spread is unknown, explained once under the table rather than in every cell.
NOT_RECORDED = "not recorded"
TOO_FEW = "too few requests"

# Parts of a recorded configuration that say where a run came from rather than what it measured. The scenario's
# name and file hash are checked on their own; its description is covered by the hash.
NOT_SETTINGS = frozenset({"name", "description", "source", "source_sha256", "overrides", "run.results_dir"})
# Settings added after runs were recorded without them, and what their absence meant: a run from before repeats
# existed measured each step once, so it is comparable with a run that says repeats = 1.
IMPLIED_SETTINGS: dict[str, Any] = {"load.repeats": 1}


class CompareError(Exception):
    """Two runs cannot be compared, or one is not a run; the message names the file and what is wrong."""


def load(label: str, path: Path) -> RunView:
    """Read one run as the other readers do, so the store's checks (a run folder, a known format version, a
    configuration that rebuilds) apply here too; the refusal says which of the two runs it was."""
    try:
        return RunView.load(path)
    except store.ResultsError as error:
        raise CompareError(f"run {label}: {error}") from None


# --- may these two runs be compared? ---------------------------------------------------------------------------

_ABSENT = object()


def settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded configuration as dotted names, ``load.think_time_s`` or ``servers[0].workers``, so that a
    refusal can name exactly the settings that differ. Everything recorded counts unless listed in
    NOT_SETTINGS, so a setting added later is compared without anyone remembering to add it here. It reads the
    configuration as saved, not as rebuilt: a refusal names a setting as the run.json a reader opens spells it."""
    flat: dict[str, Any] = {}

    def walk(value: Any, name: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{name}.{key}" if name else str(key))
        elif isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
            for index, item in enumerate(value):
                walk(item, f"{name}[{index}]")
        else:
            flat[name] = value

    walk(config, "")
    for key, value in IMPLIED_SETTINGS.items():
        flat.setdefault(key, value)
    return {key: value for key, value in flat.items() if key not in NOT_SETTINGS}


def _setting_text(value: Any) -> str:
    return "absent" if value is _ABSENT else json.dumps(value)


def check_comparable(a: RunView, b: RunView) -> None:
    """Refuse two runs that did not measure the same thing: their differences would be the settings', not the
    code's or the machine's, and a table of ratios would hide that."""
    name_a, name_b = a.config.name, b.config.name
    if name_a != name_b:
        raise CompareError(
            f"{a.file} is a run of scenario {name_a!r} but {b.file} is a run of scenario {name_b!r}; only runs of "
            "one scenario are compared"
        )
    settings_a, settings_b = settings(a.saved_config), settings(b.saved_config)
    names = [*settings_a, *(key for key in settings_b if key not in settings_a)]
    changed = [
        f"{key} ({_setting_text(settings_a.get(key, _ABSENT))} in A, {_setting_text(settings_b.get(key, _ABSENT))} "
        "in B)"
        for key in names
        if settings_a.get(key, _ABSENT) != settings_b.get(key, _ABSENT)
    ]
    sha_a, sha_b = a.config.source_sha256, b.config.source_sha256
    if not changed and sha_a == sha_b:
        return
    problems = []
    if sha_a != sha_b:
        problems.append(
            f"its file changed between them (sha256 {sha_a[:12]}… in A, {sha_b[:12]}… in B)"
            + ("" if changed else "; no recorded setting differs, so a comment or the description was edited")
        )
    if changed:
        problems.append("these settings differ: " + "; ".join(changed))
    raise CompareError(
        f"{a.file} (A) and {b.file} (B) both ran scenario {name_a!r}, but "
        + ", and ".join(problems)
        + ". Only runs of the same scenario file with the same settings are compared."
    )


# --- spread and verdict ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """How far a figure could have moved by chance: an interval, or the short reason there is none."""

    interval: tuple[float, float] | None
    basis: str


@dataclass(frozen=True)
class Metric:
    """A figure compared: how to read it from a step's figures, and the spread of one measurement of it. The
    key says its unit to whoever prints it (``..._ms`` is a duration)."""

    key: str
    title: str
    value: Callable[[Mapping[str, Any]], float | None]
    sample_spread: Callable[[Mapping[str, Any]], Spread]


def measurements(step: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every measurement of a step, as its figures: each ok repeat's when the run has repeats (the combined record
    of ``runner.repeats`` lists them), otherwise the step's own. :func:`spread` and :func:`point` take it from
    there, so a repeated step is judged by its min..max and its median."""
    combined = step.get("repeats")
    if isinstance(combined, Mapping) and combined.get("figures"):
        return list(combined["figures"])
    return [step["figures"]]


def spread(metric: Metric, figures: Sequence[Mapping[str, Any]]) -> Spread:
    """Repeats show the spread directly, so two or more give their min..max; a single measurement has only the
    interval of its own sample to go on."""
    if len(figures) >= 2:
        values = [metric.value(f) for f in figures]
        known = [v for v in values if v is not None]
        if len(known) < len(values):
            return Spread(None, f"a repeat has no {metric.title}")
        return Spread((min(known), max(known)), f"min..max of {len(values)} repeats")
    return metric.sample_spread(figures[0])


def point(metric: Metric, figures: Sequence[Mapping[str, Any]]) -> float | None:
    """The figure compared: the median of the repeats, which one odd repeat cannot drag, or the one value."""
    values = [metric.value(f) for f in figures]
    known = [v for v in values if v is not None]
    if not values or len(known) < len(values):
        return None
    return float(statistics.median(known))


def _rps(figures: Mapping[str, Any]) -> float | None:
    value = figures.get("rps")
    return float(value) if is_finite(value) else None


def _rps_spread(figures: Mapping[str, Any]) -> Spread:
    count, window = figures.get("completed_in_window"), figures.get("window_s")
    interval = (
        rate_interval(count, float(window))
        if isinstance(count, int) and not isinstance(count, bool) and is_number(window)
        else None
    )
    if interval is None:
        return Spread(None, NOT_RECORDED)
    return Spread(interval, f"{CONFIDENCE:.0%} Poisson interval of {count} completions")


def _latency_metric(percent: int) -> Metric:
    """A latency percentile with its order-statistic interval, as ``runner.stats`` records it (p50 or p95)."""
    key, ci_key = f"p{percent}_ms", f"p{percent}_ci_ms"

    def value(figures: Mapping[str, Any]) -> float | None:
        v = (figures.get("latency") or {}).get(key)
        return float(v) if is_finite(v) else None

    def sample_spread(figures: Mapping[str, Any]) -> Spread:
        latency = figures.get("latency") or {}
        if ci_key not in latency:
            return Spread(None, NOT_RECORDED)
        ci = latency[ci_key]
        if ci is None:
            return Spread(None, TOO_FEW)
        if not (isinstance(ci, list) and len(ci) == 2 and all(is_finite(x) for x in ci)):
            return Spread(None, "unreadable interval")
        return Spread((float(ci[0]), float(ci[1])), f"{CONFIDENCE:.0%} order-statistic interval")

    return Metric(key, f"p{percent}", value, sample_spread)


METRICS = (Metric("rps", "req/s", _rps, _rps_spread), _latency_metric(95))


def verdict(a: float | None, b: float | None, spread_a: Spread, spread_b: Spread) -> tuple[str, str]:
    """(verdict, why). Overlapping spreads are "not significant"; a missing spread is stated, never guessed."""
    if a is None or b is None:
        return NO_FIGURE, "none in " + " and ".join(label for label, v in (("A", a), ("B", b)) if v is None)
    if spread_a.interval is None or spread_b.interval is None:
        reasons = {label: s.basis for label, s in (("A", spread_a), ("B", spread_b)) if s.interval is None}
        if len(reasons) == 2 and len(set(reasons.values())) == 1:
            return SPREAD_UNKNOWN, reasons["A"]
        return SPREAD_UNKNOWN, "; ".join(f"{label}: {why}" for label, why in reasons.items())
    (low_a, high_a), (low_b, high_b) = spread_a.interval, spread_b.interval
    if low_a <= high_b and low_b <= high_a:
        return NOT_SIGNIFICANT, "the intervals overlap"
    return ("B higher" if low_b > high_a else "B lower"), "the intervals do not overlap"


# --- the comparison --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One metric of one step in both runs."""

    metric: Metric
    a: float | None
    b: float | None
    spread_a: Spread | None
    spread_b: Spread | None
    ratio: float | None
    verdict: str
    why: str


@dataclass(frozen=True)
class StepRow:
    server: str
    users: int
    # "ok", "missing" (never recorded) or the step's own status, such as "failed".
    state_a: str
    state_b: str
    figures: tuple[Figure, ...]

    @property
    def status(self) -> str:
        """Compared only when measured in both runs; otherwise which run has it."""
        if self.state_a == "ok" and self.state_b == "ok":
            return "compared"
        if self.state_a == "ok":
            return "only in A"
        if self.state_b == "ok":
            return "only in B"
        return "in neither"

    @property
    def detail(self) -> str:
        return ", ".join(
            f"{label}: {state}" for label, state in (("A", self.state_a), ("B", self.state_b)) if state != "ok"
        )


@dataclass(frozen=True)
class Comparison:
    """Run A (the baseline) and run B, a row per step, and what else differs between the runs."""

    a: RunView
    b: RunView
    rows: tuple[StepRow, ...]
    notes: tuple[str, ...]


def _state(step: Mapping[str, Any] | None) -> str:
    if step is None:
        return "missing"
    return "ok" if is_ok(step) else str(step.get("status") or "failed")


def _row(server: str, users: int, step_a: Mapping[str, Any] | None, step_b: Mapping[str, Any] | None) -> StepRow:
    state_a, state_b = _state(step_a), _state(step_b)
    row = StepRow(server, users, state_a, state_b, ())
    measured_a = measurements(step_a) if step_a is not None and state_a == "ok" else None
    measured_b = measurements(step_b) if step_b is not None and state_b == "ok" else None
    figures = []
    for metric in METRICS:
        a = point(metric, measured_a) if measured_a else None
        b = point(metric, measured_b) if measured_b else None
        spread_a = spread(metric, measured_a) if measured_a else None
        spread_b = spread(metric, measured_b) if measured_b else None
        ratio = b / a if a is not None and b is not None and a > 0 else None
        if spread_a is not None and spread_b is not None:
            word, why = verdict(a, b, spread_a, spread_b)
        else:
            word, why = row.status, row.detail
        figures.append(Figure(metric, a, b, spread_a, spread_b, ratio, word, why))
    return replace(row, figures=tuple(figures))


def compare(a: RunView, b: RunView) -> Comparison:
    """Every planned step of the (shared) configuration, server by server, then any step recorded beyond it."""
    planned = [(server.name, int(users)) for server in a.servers for users in sorted(a.users)]
    extra = sorted((a.by_level.keys() | b.by_level.keys()) - set(planned))
    rows = tuple(
        _row(server, users, a.step(server, users), b.step(server, users)) for server, users in [*planned, *extra]
    )
    return Comparison(a, b, rows, tuple(environment_notes(a, b)))


def environment_notes(a: RunView, b: RunView) -> list[str]:
    """What else differs between the runs: the reader must know whether a difference is the code's, the
    machine's or a run that did not finish."""
    notes = []
    for label, run in (("A", a), ("B", b)):
        if run.status != "complete":
            notes.append(f"Run {label} is marked {run.status!r}: not every step was measured.")
    meta_a, meta_b = a.metadata, b.metadata
    for key, label in (("cpu_model", "CPU model"), ("cpu_count", "core count"), ("os", "OS"), ("python", "Python")):
        if meta_a.get(key) != meta_b.get(key):
            notes.append(f"{label} differs: {meta_a.get(key)} in A, {meta_b.get(key)} in B.")
    packages_a, packages_b = meta_a.get("packages") or {}, meta_b.get("packages") or {}
    changed = [
        f"{name} {packages_a.get(name, '-')} -> {packages_b.get(name, '-')}"
        for name in sorted(packages_a.keys() | packages_b.keys())
        if packages_a.get(name) != packages_b.get(name)
    ]
    if changed:
        notes.append("Package versions differ (A -> B): " + ", ".join(changed) + ".")
    return notes


def _commit(run: RunView) -> str:
    git = run.metadata.get("git") or {}
    commit = str(git.get("commit") or "?")[:10]
    return commit + (" (uncommitted changes)" if git.get("dirty") else "")


def run_facts(run: RunView) -> dict[str, Any]:
    """Where a run is and what it is: the lines a reader checks before trusting a row."""
    return {
        "path": str(run.path),
        "name": run.path.name,
        "status": run.status,
        # Runs whose metadata has no date still carry when the sweep started.
        "date": run.metadata.get("date") or run.doc.get("started"),
        "commit": _commit(run),
    }
