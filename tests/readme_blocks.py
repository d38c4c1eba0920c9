"""The README's figures for the committed reference runs, generated from them.

Every block of the README between ``<!-- generated: NAME -->`` and ``<!-- end: NAME -->`` is the output of the
function of that name here, computed from ``results/reference/<scenario>/``; ``tests/test_readme.py`` requires
each block to be exactly what its function gives now, so a stale figure fails CI. Where a block says something in
words (which server kept up, what bounds it), the function asserts what the words claim, so data that contradict
them stop the regeneration instead of being described wrongly.

Regenerate after new reference runs: ``PYTHONPATH=. .venv/bin/python -m tests.readme_blocks`` (rewrites the
blocks in README.md in place; anything outside the markers is left alone).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import datetime

from runner import explain, report
from runner.config import ROOT
from runner.expected import cpu_ms_per_request
from runner.numbers import fmt, fmt_ms
from runner.open_view import capacities, open_servers
from runner.report_experiments import burst_story
from runner.report_model import agreement
from runner.report_open import NOT_READ, same_load
from runner.report_proxy import proxy_cpu_ms
from runner.view import RunView, figure_of, shown_round, slow_client_runs

REFERENCES = ROOT / "results" / "reference"
README = ROOT / "README.md"
SIMULATED = (
    "default", "sized-sync", "fair", "cpu-bound", "pool-limited", "antipatterns", "behind-proxy", "open-default"
)  # fmt: skip
POSTGRES = ("postgres", "postgres-orm", "postgres-pool")
UPSTREAM = ("upstream", "upstream-limited", "upstream-antipatterns")
ALL_REFERENCES = SIMULATED + POSTGRES + UPSTREAM


def reference(name: str) -> RunView:
    return RunView.load(REFERENCES / name)


def top(view: RunView) -> int:
    return max(view.users)


def record(view: RunView, server: str, users: int) -> dict[str, object]:
    found = view.ok_step(server, users)
    assert found is not None, f"{view.path.name}: {server} at {users} users was not measured"
    return dict(found)


def rps(view: RunView, server: str, users: int) -> float:
    return float(view.by_level[(server, users)]["figures"]["rps"])


def p50(view: RunView, server: str, users: int) -> float:
    return float(view.by_level[(server, users)]["figures"]["latency"]["p50_ms"])


def p95(view: RunView, server: str, users: int) -> float:
    return float(view.by_level[(server, users)]["figures"]["latency"]["p95_ms"])


def cpu(view: RunView, server: str, users: int) -> float:
    return float(view.by_level[(server, users)]["server_cpu_pct"])


def bound(view: RunView, server: str, users: int) -> str:
    return view.expectations[(server, users)].prediction.bound_by


def figures_at(view: RunView, server: str, users: int) -> str:
    return f"{fmt(rps(view, server, users))}/s, median {fmt_ms(p50(view, server, users))}"


# --- what it shows: the default scenario ------------------------------------------------------------------------


def default_setup() -> str:
    view = reference("default")
    meta = view.metadata
    started = datetime.fromisoformat(str(view.doc["started"]))
    finished = datetime.fromisoformat(str(view.doc["finished"]))
    took = int((finished - started).total_seconds())
    return (
        f"It was measured on a {meta['cpu_count']}-core {meta['cpu_model']} virtual machine ({meta['memory_gb']:.0f} "
        f"GiB, Python {meta['python']}), with the server pinned to one core and Locust to the other; the whole run "
        f"(sweep, timeline and burst) took {took // 60} min {took % 60} s."
    )


def default_table() -> str:
    view = reference("default")
    sync, asyn = view.pair
    assert sync is not None and asyn is not None
    rows = [
        "| users | sync req/s | sync p50 | sync p95 | async req/s | async p50 | async p95 |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for users in view.users:
        cells = [str(users)]
        for spec in (sync, asyn):
            figures = view.by_level[(spec.name, users)]["figures"]
            latency = figures["latency"]
            tail = fmt_ms(latency["p95_ms"]) if latency["p95_ms"] is not None else f"– ({latency['requests']} requests)"
            cells += [fmt(figures["rps"]), fmt_ms(latency["p50_ms"]), tail]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _reading(view: RunView, starts: tuple[str, ...]) -> list[str]:
    """The report's own reading paragraphs that begin with one of ``starts``, as the report words them."""
    return [p for p in report.reading(view) if p.startswith(starts)]


def default_reading() -> str:
    """The report's own words for the default reference (the rules in runner/report.py decide each claim), the
    timeline in one line, the model's agreement, and how each server came back after the burst."""
    view = reference("default")
    lines = []
    timeline = view.timeline
    assert timeline is not None
    parts = []
    for name, server in timeline["servers"].items():
        probes = {p["label"]: p for p in shown_round(server["rounds"])}
        short = probes["short"]
        pages = [p for label, p in probes.items() if label != "short"]
        took = (short["received"] - short["sent"]) * 1000
        last = short["received"] > max(p["received"] for p in pages)
        parts.append(f"on {name} it came back {'after both pages' if last else 'first'}, after {took:.0f} ms")
    lines.append(
        f"* **Three requests arriving together:** two pages and a {view.config.workload.short_query_ms:g} ms short "
        f"request sent together; {'; '.join(parts)}."
    )
    for paragraph in _reading(view, (f"**At {top(view)} users**", "**Up to", "**Why", "**The short request")):
        lines.append(f"* {paragraph}")
    lines += [f"* {line}" for line in agreement(view) if line]
    burst = view.burst
    assert burst is not None
    for name, server in burst["servers"].items():
        lines.append(f"* **The burst over time on {name}:** {burst_story(server)}.")
    return "\n".join(lines)


def both_halves() -> str:
    """The headline table: what 3 workers lose and what sized threads and greenlets get back, at what memory cost,
    from the sized-sync reference at its highest level."""
    view = reference("sized-sync")
    users = top(view)
    rows = [
        f"| configuration at {users} users | slots | req/s | median | p95 | server CPU | memory (PSS) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for spec in view.servers:
        step = record(view, spec.name, users)
        slots = "no limit" if spec.slots is None else str(spec.slots)
        rows.append(
            f"| {spec.name} ({spec.describe()}) | {slots} | {fmt(rps(view, spec.name, users))} "
            f"| {fmt_ms(p50(view, spec.name, users))} | {fmt_ms(p95(view, spec.name, users))} "
            f"| {fmt(step['server_cpu_pct'], 0)}% | {fmt(step.get('server_pss_mb'), 0)} MB |"
        )
    return "\n".join(rows)


def both_halves_reading() -> str:
    view = reference("sized-sync")
    users = top(view)
    best = max(rps(view, s.name, users) for s in view.servers)
    three = rps(view, "flask-gunicorn", users)
    sized = {name: rps(view, name, users) for name in ("flask-gthread", "flask-gevent")}
    loop, closed = rps(view, "fastapi-uvicorn", users), rps(view, "fastapi-uvicorn-close", users)
    assert three < 0.5 * best, "3 sync workers no longer lose half the best throughput"
    assert bound(view, "flask-gunicorn", users) == "slots"
    kept = [name for name, value in sized.items() if value >= 0.9 * loop]
    lost = [name for name in sized if name not in kept]
    pss = {s.name: float(record(view, s.name, users)["server_pss_mb"]) for s in view.servers}  # type: ignore[arg-type]
    text = (
        f"At {users} users gunicorn's 3 sync workers run out of slots and serve {fmt(three)} requests/s; "
        + (
            f"{' and '.join(kept)} {'serve' if len(kept) > 1 else 'serves'} within 10% of the event loop's "
            f"{fmt(loop)}/s, at {' and '.join(f'{pss[name]:.0f} MB' for name in kept)} of memory against the "
            f"event loop's {pss['fastapi-uvicorn']:.0f} MB"
            if kept
            else f"neither sized configuration comes within 10% of the event loop's {fmt(loop)}/s"
        )
        + (f"; {' and '.join(lost)} {'do' if len(lost) > 1 else 'does'} not" if kept and lost else "")
        + ". "
    )
    change = closed / loop - 1
    text += (
        f"The event loop with keep-alive off, a new connection per request as the sync worker always has, served "
        f"{fmt(closed)}/s against {fmt(loop)}/s with keep-alive ({change:+.0%}), median "
        f"{fmt_ms(p50(view, 'fastapi-uvicorn-close', users))} against {fmt_ms(p50(view, 'fastapi-uvicorn', users))}: "
        + (
            "connection handling does not decide the result."
            if abs(change) < 0.1 and three < 0.5 * closed
            else "connection handling moves the result; see the report."
        )
    )
    return text


# --- the scenarios, one line each -------------------------------------------------------------------------------


def _line(name: str, text: str) -> str:
    return f"* **[`{name}`](results/reference/{name}/report.md)**: {text}"


def scenarios() -> str:
    lines = []
    view = reference("default")
    users = top(view)
    assert bound(view, "flask-gunicorn", users) == "slots" and cpu(view, "flask-gunicorn", users) < 50
    lines.append(
        _line(
            "default",
            f"long waits, 3 sync workers against one event loop: at {users} users async "
            f"{figures_at(view, 'fastapi-uvicorn', users)}, sync {figures_at(view, 'flask-gunicorn', users)}, "
            "because 3 workers run out of slots (model: "
            f"{view.systems['flask-gunicorn'].max_rps:.0f}/s, knee {view.systems['flask-gunicorn'].knee_users:.0f} "
            f"users) while their core is {cpu(view, 'flask-gunicorn', users):.0f}% busy.",
        )
    )
    view = reference("sized-sync")
    users = top(view)
    lines.append(
        _line(
            "sized-sync",
            f"the same waits with sync given enough slots: at {users} users "
            + ", ".join(f"{s.name} {figures_at(view, s.name, users)}" for s in view.servers)
            + "; see the table above.",
        )
    )
    view = reference("fair")
    users = top(view)
    lower = [n for n in view.users if n < users]
    below = max(lower)
    rates = [rps(view, s.name, below) for s in view.servers]
    assert max(rates) <= 1.1 * min(rates), "fair: the servers are no longer alike below the top level"
    ranked = sorted(view.servers, key=lambda s: rps(view, s.name, users), reverse=True)
    assert all(bound(view, s.name, users) == "cpu" for s in view.servers)
    lines.append(
        _line(
            "fair",
            f"short waits: up to {below} users every server serves within 10% of the others "
            f"({min(rates):.0f}-{max(rates):.0f}/s); at {users} users all are bound by the CPU and the one that "
            "spends least CPU per request serves most ("
            + ", ".join(f"{s.name} {fmt(rps(view, s.name, users))}/s" for s in ranked)
            + ").",
        )
    )
    view = reference("cpu-bound")
    users = top(view)
    a, s = rps(view, "fastapi-uvicorn", users), rps(view, "flask-gunicorn", users)
    assert abs(a / s - 1) < 0.1, "cpu-bound: async and sync no longer serve alike"
    lines.append(
        _line(
            "cpu-bound",
            f"25 ms of Python per page: at {users} users both serve about the core's limit "
            f"({fmt(s)}/s sync, {fmt(a)}/s async), so async does not help; it reorders the queue (median "
            f"{fmt_ms(p50(view, 'fastapi-uvicorn', users))} async against {fmt_ms(p50(view, 'flask-gunicorn', users))}"
            f" sync, p95 {fmt_ms(p95(view, 'fastapi-uvicorn', users))} against "
            f"{fmt_ms(p95(view, 'flask-gunicorn', users))}).",
        )
    )
    view = reference("pool-limited")
    users = top(view)
    ceiling = {s.name: view.expectations[(s.name, users)].prediction.model_rps for s in view.servers}
    assert all(bound(view, s.name, users) == "database" for s in view.servers)
    lines.append(
        _line(
            "pool-limited",
            f"4 database connections per process cap every server: at {users} users "
            + ", ".join(f"{s.name} {fmt(rps(view, s.name, users))}/s" for s in view.servers)
            + f", against the pool's ceiling of {min(ceiling.values()):.0f}/s in the model.",
        )
    )
    view = reference("antipatterns")
    users = top(view)
    lines.append(
        _line(
            "antipatterns",
            f"one uvicorn process at {users} users, four ways: "
            + "; ".join(
                f"{s.name} {figures_at(view, s.name, users)}"
                + (
                    f", {view.by_level[(s.name, users)]['figures']['unfinished']} requests unanswered after the drain"
                    if view.by_level[(s.name, users)]["figures"].get("unfinished")
                    else ""
                )
                for s in view.servers
            )
            + ".",
        )
    )
    lines.append(_line("behind-proxy", behind_proxy_reading()))
    lines.append(_line("open-default", open_default_reading()))
    lines.append(_line("upstream", upstream_reading()))
    lines.append(_line("upstream-limited", upstream_limited_reading()))
    lines.append(_line("upstream-antipatterns", upstream_antipatterns_reading()))
    return "\n".join(lines)


# What each verdict of the slow-client experiment (runner.view.SlowClientsRun.verdict) reads as in the README.
SLOW_VERDICT_WORDS = {
    "stopped": "stopped",
    "slowed": "slowed",
    "within chance": "lowered by no more than chance the throughput of",
    "unaffected": "left unaffected",
    "unknown": "could not judge",
    "failed": "failed to measure",
}


def behind_proxy_reading() -> str:
    """The slow clients' verdict per K and what nginx cost, in words chosen by the run's own figures."""
    view = reference("behind-proxy")
    runs = slow_client_runs(view.slow_clients)
    counts = sorted({r.count for r in runs if r.count > 0})
    assert counts, "behind-proxy: the reference has no slow-client runs"
    config = view.config.slow_clients
    verdicts = []
    for count in counts:
        groups: dict[str, list[str]] = {}
        for run in runs:
            if run.count == count:
                verdict = "within chance" if run.verdict == "slowed" and run.drop_within_chance else run.verdict
                groups.setdefault(verdict, []).append(run.server)
        verdicts.append(
            f"{count} of them "
            + ", ".join(f"{SLOW_VERDICT_WORDS[v]} {' and '.join(names)}" for v, names in groups.items())
        )
    costs = []
    for proxied, direct in view.proxy_twins:
        knee = view.systems[direct.name].knee_users
        below = [n for n in view.users if n < knee and view.ok_step(proxied.name, n) and view.ok_step(direct.name, n)]
        added = [
            (figure_of(view.ok_step(proxied.name, n), "p50_ms") or 0.0)
            - (figure_of(view.ok_step(direct.name, n), "p50_ms") or 0.0)
            for n in below
        ]
        cpu_ms = [x for n in view.users if (x := proxy_cpu_ms(view.ok_step(proxied.name, n))) is not None]
        assert cpu_ms and added, f"behind-proxy: {proxied.name} has no proxy CPU or no level below the knee"
        costs.append(
            f"{direct.name} {min(cpu_ms):.2f}-{max(cpu_ms):.2f} ms of nginx CPU per request and "
            f"{'+' if min(added) >= 0 else '−'}{fmt_ms(abs(min(added)))} to "
            f"{'+' if max(added) >= 0 else '−'}{fmt_ms(abs(max(added)))} on the median below its knee "
            f"({', '.join(str(n) for n in below)} users)"
        )
    return (
        f"{config.users} users with slow clients sending their headers a byte every {config.byte_interval_s:g} s: "
        + "; ".join(verdicts)
        + ". nginx in front (one worker, on the server's core) cost "
        + "; ".join(costs)
        + "."
    )


def open_default_reading() -> str:
    """Each server's capacity within the target, where its p99 left the target against the model, and how often
    the closed loop's percentiles hid the queue at the same throughput: every word chosen by the run's figures."""
    view = reference("open-default")
    assert view.open is not None and view.capacity is not None, "open-default: no open arrivals or capacity"
    slo = float(view.capacity["slo_p99_ms"])
    found = {c.server: c for c in capacities(view.capacity)}
    parts = []
    for server in open_servers(view.open):
        c = found[server.name]
        assert c.confirmed and c.capacity_rps is not None, f"open-default: {server.name} has no confirmed capacity"
        inside = "inside" if c.within_bracket else "outside"
        # A window whose generator fell behind is measured again (passed None); a run made before that rule, or a
        # rate whose every try fell behind, counted it as a failure, and the line must say which.
        again = sum(1 for probe in c.probes if probe["passed"] is None)
        failed = sum(1 for probe in c.probes if probe["passed"] is False and "generator" in probe["why"])
        notes = [
            f"{n} of its probe windows {'was' if n == 1 else 'were'} limited by the load generator and {what}"
            for n, what in ((again, "measured again"), (failed, "counted as failures"))
            if n
        ]
        parts.append(
            f"{server.name} {fmt(c.capacity_rps)}/s (the model {fmt(c.model_capacity_rps)}/s, {inside} the bracket "
            "it started from" + "".join(f"; {note}" for note in notes) + ")"
        )
    hidden = []
    for server in open_servers(view.open):
        pairs = [p for p in same_load(view, server) if p.judged != NOT_READ]
        hid = [p for p in pairs if p.judged == "hid the queue"]
        if not pairs:
            continue
        worst = max(
            hid, key=lambda p: (p.open.latency("p95_ms") or 0) / (p.closed_latency("p95_ms") or 1), default=None
        )
        text = f"{server.name}: {len(hid)} of {len(pairs)} closed steps"
        if worst is not None:
            text += (
                f" (at {worst.users} users: p95 {fmt_ms(worst.closed_latency('p95_ms'))} closed against "
                f"{fmt_ms(worst.open.latency('p95_ms'))} from the schedule at {worst.open.rate:g} arrivals/s)"
            )
        hidden.append(text)
    return (
        f"the default's servers under open arrivals: capacity within p99 {slo:g} ms "
        + ", ".join(parts)
        + ". At the same load (the rate the closed loop's users ask for) the closed loop's p95 hid the queue at "
        + "; ".join(hidden)
        + "."
    )


def upstream_reading() -> str:
    """The upstream scenario at its top level: each server's throughput and median, what bounds it in the model,
    and the upstream service's own CPU."""
    view = reference("upstream")
    users = top(view)
    for s in view.servers:
        assert bound(view, s.name, users) in ("slots", "cpu", "users"), f"upstream: {s.name} bound elsewhere"
    upstream_cpu = [float(r["upstream_cpu_pct"]) for r in view.records if r.get("upstream_cpu_pct") is not None]
    assert upstream_cpu, "upstream: no step recorded the upstream's CPU"
    return (
        f"the default's waits as calls to an upstream HTTP service: at {users} users "
        + ", ".join(f"{s.name} {figures_at(view, s.name, users)} ({bound(view, s.name, users)})" for s in view.servers)
        + f"; the upstream service used {min(upstream_cpu):.0f}-{max(upstream_cpu):.0f}% of the client's core."
    )


def upstream_limited_reading() -> str:
    """Both servers capped by the upstream's capacity, each against the model's ceiling."""
    view = reference("upstream-limited")
    users = top(view)
    parts = []
    for s in view.servers:
        e = view.expectations[(s.name, users)]
        measured = rps(view, s.name, users)
        assert e.prediction.bound_by == "database", f"upstream-limited: {s.name} is not bound by the upstream"
        off = measured / e.prediction.model_rps - 1
        assert abs(off) <= 0.15, f"upstream-limited: {s.name} is {off:+.0%} off the model"
        parts.append(f"{s.name} {fmt(measured)}/s ({off:+.0%} from the model's {fmt(e.prediction.model_rps)}/s)")
    return f"an upstream that serves 4 calls at once caps both sides: at {users} users " + ", ".join(parts) + "."


def upstream_antipatterns_reading() -> str:
    """Each mistake beside the same server done right, at the top level: throughput, median and CPU per request."""
    view = reference("upstream-antipatterns")
    users = top(view)
    cells = []
    for s in view.servers:
        step = view.ok_step(s.name, users)
        assert step is not None, f"upstream-antipatterns: {s.name} at {users} users was not measured"
        cpu_ms = cpu_ms_per_request(step)
        cells.append(f"{s.name} {figures_at(view, s.name, users)}, {fmt(cpu_ms, 1)} ms CPU per request")
    return f"the common mistakes with an HTTP client, at {users} users: " + "; ".join(cells) + "."


# --- the model over every reference ----------------------------------------------------------------------------


def model_agreement() -> str:
    """Over every reference: throughput off the model, and where the model can be wrong (past the knee) how many
    steps' mean response times are within 10% and 25% of it; each step outside 25% is listed in its report's
    model section with its measured cause, and the unexplained ones are named here."""
    steps = outside = chance = 0
    past = within10 = within25 = 0
    below = below25 = 0
    unexplained: list[str] = []
    little = 0
    for name in ALL_REFERENCES:
        view = reference(name)
        for (server, users), e in view.expectations.items():
            step = view.ok_step(server, users)
            spec = view.server(server)
            if e.efficiency is None or step is None or spec is None:
                continue
            steps += 1
            little += e.little_off
            if e.outside:
                outside += 1
                chance += e.within_noise
            ratio = e.mean_ratio
            if e.past_knee:
                past += 1
                within10 += ratio is not None and abs(ratio - 1) <= 0.10
                within25 += ratio is not None and abs(ratio - 1) <= 0.25
            else:
                below += 1
                below25 += ratio is not None and abs(ratio - 1) <= 0.25
            reasons = ([explain.throughput(e, step, spec)] if e.outside else []) + (
                [explain.response_time(e, step, spec)] if e.mean_outside else []
            )
            if any(explain.is_unexplained(r) for r in reasons):
                unexplained.append(f"{name}: {server} at {users} users")
    text = (
        f"Over the {steps} measured steps of the {len(ALL_REFERENCES)} reference runs: {outside} are further than 15% "
        f"from the queueing model's throughput, {chance} of them with so few requests that the model lies inside "
        f"their own 95% interval. Throughput below the knee agrees with the model whatever the server does, so the "
        f"figure judged there is the mean response time: within 25% of the model's at {below25} of {below} steps. "
        f"Past the knee, where the model can be wrong, {within10} of {past} steps have a mean response time within "
        f"10% of the model's and {within25} within 25%. {little} step(s) break N = X (R + Z) beyond chance (a "
        "measurement problem, flagged in their reports). Each step outside these bounds is listed in its report's "
        "model section with the cause its own measurements show"
    )
    if unexplained:
        text += f", or as unexplained: {'; '.join(unexplained)}."
    else:
        text += "; none is unexplained."
    return text


BLOCKS: dict[str, Callable[[], str]] = {
    "default-setup": default_setup,
    "default-table": default_table,
    "default-reading": default_reading,
    "both-halves": both_halves,
    "both-halves-reading": both_halves_reading,
    "scenarios": scenarios,
    "model-agreement": model_agreement,
}


def block_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated: {re.escape(name)} -->)\n(.*?)\n?(<!-- end: {re.escape(name)} -->)", re.S)


def current(text: str, name: str) -> str | None:
    found = block_pattern(name).search(text)
    return found.group(2) if found else None


def rewrite(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = block_pattern(name)
        assert pattern.search(text), f"README.md has no block {name!r}"
        body = make()

        def put(found: re.Match[str], body: str = body) -> str:
            return f"{found.group(1)}\n{body}\n{found.group(3)}"

        text = pattern.sub(put, text)
    return text


if __name__ == "__main__":
    README.write_text(rewrite(README.read_text(encoding="utf-8")), encoding="utf-8")
    sys.exit(0)
