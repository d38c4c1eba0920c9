"""The report's section "What the proxy costs": each configuration behind nginx beside its twin served directly.

A twin is the same server configuration in every setting but its name and the proxy's (see
:attr:`runner.view.RunView.proxy_twins`), measured in the same run at the same user levels, so the difference
between the two is the proxy's. Per user level the section shows both throughputs, medians and p95s, what the
proxy added to each, and nginx's own CPU per request (its tree's CPU over the step's window: CPU% x 10 / req/s ms).

The sentences are rules applied to those figures, and each can come out either way:

* **The median below the knee.** Below the direct server's knee (the model's, :attr:`runner.model.System.knee_users`)
  neither side queues for the app's slots, so a difference in the median there is the proxy's own latency. "The proxy
  added X to the median at every level below the knee" is said only when the median behind nginx was higher at every
  such level measured on both; otherwise the section says at how many it was higher and at how many not. Each
  level's difference is also judged against chance: where the two medians' 95% intervals overlap, chance alone
  could explain it, and the count of such levels is given.
* **nginx's CPU** per request is given as measured, beside the app's own CPU per request behind it.
* **The highest level** measured on both: throughput behind nginx against direct, judged "within 10%" or not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from runner.config import ServerConfig
from runner.expected import cpu_ms_per_request
from runner.numbers import DASH, fmt, fmt_ms, is_finite, is_number
from runner.view import Record, RunView, figure_of

# Throughput behind the proxy within this share of the direct server's counts as the same.
SAME_THROUGHPUT = 0.10


def proxy_cpu_ms(step: Mapping[str, Any] | None) -> float | None:
    """nginx's CPU per request in a proxied step, in ms: its CPU (% of one core) x 10 ms per second / requests per
    second. None where the step has no proxy CPU or completed nothing."""
    if step is None:
        return None
    cpu, rps = step.get("proxy_cpu_pct"), (step.get("figures") or {}).get("rps")
    if not (is_finite(cpu) and is_number(rps)):
        return None
    return float(cpu) * 10 / float(rps)


def signed_ms(value: float | None) -> str:
    """A difference in ms with its sign (a real minus sign for a negative one); a dash where there is none."""
    if value is None or not math.isfinite(value):
        return DASH
    return ("+" if value >= 0 else "−") + fmt_ms(abs(value))


def _difference(proxied: Record | None, direct: Record | None, key: str) -> float | None:
    a, b = figure_of(proxied, key), figure_of(direct, key)
    return None if a is None or b is None else a - b


def _intervals_overlap(proxied: Record, direct: Record) -> bool:
    """Whether chance alone could explain the difference between the two medians: their 95% intervals overlap, or
    either step has too few requests for one."""
    a = (proxied.get("figures") or {}).get("latency", {}).get("p50_ci_ms")
    b = (direct.get("figures") or {}).get("latency", {}).get("p50_ci_ms")
    if not (isinstance(a, Sequence) and isinstance(b, Sequence) and len(a) == 2 and len(b) == 2):
        return True
    return bool(a[0] <= b[1] and b[0] <= a[1])


def _range_ms(values: Sequence[float], signed: bool = False) -> str:
    low, high = min(values), max(values)
    show = signed_ms if signed else fmt_ms
    return show(low) if math.isclose(low, high) else f"between {show(low)} and {show(high)}"


def _table(view: RunView, proxied: ServerConfig, direct: ServerConfig) -> list[str]:
    head = [
        "users",
        "req/s direct",
        "req/s behind nginx",
        "p50 direct",
        "p50 behind nginx",
        "p50 added",
        "p95 direct",
        "p95 behind nginx",
        "p95 added",
        "nginx CPU",
        "nginx CPU per request",
        "app CPU per request",
    ]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for users in view.users:
        p, d = view.ok_step(proxied.name, users), view.ok_step(direct.name, users)
        if p is None and d is None:
            continue
        cpu = p.get("proxy_cpu_pct") if p is not None else None
        cells = [
            str(users),
            fmt(d["figures"]["rps"]) if d else DASH,
            fmt(p["figures"]["rps"]) if p else DASH,
            fmt_ms(figure_of(d, "p50_ms")),
            fmt_ms(figure_of(p, "p50_ms")),
            signed_ms(_difference(p, d, "p50_ms")),
            fmt_ms(figure_of(d, "p95_ms")),
            fmt_ms(figure_of(p, "p95_ms")),
            signed_ms(_difference(p, d, "p95_ms")),
            f"{fmt(cpu, 0)}%" if is_finite(cpu) else DASH,
            fmt_ms(proxy_cpu_ms(p)),
            fmt_ms(cpu_ms_per_request(p) if p is not None else None),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _median_below_knee(view: RunView, proxied: ServerConfig, direct: ServerConfig) -> str:
    """What the proxy did to the median below the direct server's knee, by the rule in the module's docstring."""
    knee = view.systems[direct.name].knee_users
    where = f"below the knee (about {knee:.0f} users by the model of {direct.name})" if math.isfinite(knee) else ""
    levels = [
        n
        for n in view.users
        if (not math.isfinite(knee) or n < knee)
        and _difference(view.ok_step(proxied.name, n), view.ok_step(direct.name, n), "p50_ms") is not None
    ]
    if not levels:
        return (
            f"No level {where or 'at all'} has a median on both {proxied.name} and {direct.name}, so what the proxy "
            "adds to the median is not established."
        )
    where = where or "at every level measured (the model puts no knee in reach)"
    pairs = [(view.by_level[(proxied.name, n)], view.by_level[(direct.name, n)]) for n in levels]
    added = [_difference(p, d, "p50_ms") or 0.0 for p, d in pairs]
    added_p95 = [x for p, d in pairs if (x := _difference(p, d, "p95_ms")) is not None]
    chance = sum(1 for p, d in pairs if _intervals_overlap(p, d))
    chance_text = (
        f"at {chance} of the {len(levels)} level(s) chance alone could explain the difference (the two medians' 95% "
        "intervals overlap, or a step has too few requests for one)"
        if chance
        else f"at each of the {len(levels)} level(s) the two medians' 95% intervals are apart"
    )
    p95 = f" (to the p95: {_range_ms(added_p95, signed=True)})" if added_p95 else ""
    if all(x > 0 for x in added):
        return (
            f"**The proxy added {_range_ms(added)} to the median at every level {where}** "
            f"({', '.join(str(n) for n in levels)} users){p95}; {chance_text}."
        )
    higher = [x for x in added if x > 0]
    lower = [x for x in added if x <= 0]
    higher_text = f"higher behind nginx at {len(higher)} (by up to {fmt_ms(max(higher))})" if higher else ""
    lower_text = f"not higher at {len(lower)} (by up to {fmt_ms(abs(min(lower)))} lower)"
    return (
        f"**The proxy did not add to the median at every level {where}:** of {len(levels)} level(s) measured on "
        f"both, the median was {', '.join(t for t in (higher_text, lower_text) if t)}{p95}; {chance_text}."
    )


def _cpu_sentence(view: RunView, proxied: ServerConfig) -> str:
    steps = [s for n in view.users if (s := view.ok_step(proxied.name, n)) is not None]
    nginx = [x for s in steps if (x := proxy_cpu_ms(s)) is not None]
    if not nginx:
        return "nginx's own CPU was not recorded for these steps."
    app = [x for s in steps if (x := cpu_ms_per_request(s)) is not None]
    app_text = f", against {_range_ms(app)} for the app itself behind it" if app else ""
    return (
        f"**nginx's own CPU** was {_range_ms(nginx)} per request ({len(nginx)} level(s)){app_text}; it runs on the "
        "server's core(s), so under load it takes that CPU from the app (the model beside each step does not count it)."
    )


def _highest_level(view: RunView, proxied: ServerConfig, direct: ServerConfig) -> str:
    both = [n for n in view.users if view.ok_step(proxied.name, n) and view.ok_step(direct.name, n)]
    if not both:
        return ""
    n = both[-1]
    p, d = view.by_level[(proxied.name, n)], view.by_level[(direct.name, n)]
    p_rps, d_rps = float(p["figures"]["rps"]), float(d["figures"]["rps"])
    if d_rps <= 0:
        return ""
    change = p_rps / d_rps - 1
    verdict = (
        f"within {SAME_THROUGHPUT:.0%} of each other"
        if abs(change) <= SAME_THROUGHPUT
        else f"{abs(change):.0%} {'more' if change > 0 else 'less'} behind nginx"
    )
    return (
        f"**At {n} users** {proxied.name} completed {fmt(p_rps)} requests/s against {direct.name}'s {fmt(d_rps)} "
        f"({verdict}); median {fmt_ms(figure_of(p, 'p50_ms'))} against {fmt_ms(figure_of(d, 'p50_ms'))}, p95 "
        f"{fmt_ms(figure_of(p, 'p95_ms'))} against {fmt_ms(figure_of(d, 'p95_ms'))}."
    )


def proxy_section(view: RunView) -> list[str]:
    """The section, or nothing when no server of the run is behind a proxy."""
    proxied = [s for s in view.servers if s.proxy is not None]
    if not proxied:
        return []
    lines = ["## What the proxy costs", ""]
    twins = dict(view.proxy_twins)
    for spec in proxied:
        direct = twins.get(spec)
        if direct is None:
            lines += [
                f"{spec.name} ({spec.describe()}) has no twin served directly in this run (the same configuration "
                "without the proxy), so what the proxy costs it is not measured here.",
                "",
            ]
            continue
        lines += [
            f"### {spec.name} against {direct.name}",
            "",
            f"{spec.name} is {direct.name} ({direct.describe()}) behind nginx with {spec.proxy_workers} worker "
            f"process(es), measured at the same levels in the same run. nginx's CPU is its own process tree's, "
            "sampled apart from the app's server CPU in the tables above.",
            "",
            *_table(view, spec, direct),
            "",
        ]
        for sentence in (
            _median_below_knee(view, spec, direct),
            _cpu_sentence(view, spec),
            _highest_level(view, spec, direct),
        ):
            if sentence:
                lines += [sentence, ""]
    return lines
