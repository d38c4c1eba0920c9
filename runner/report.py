"""``report.md``: what was run, the numbers per level, and a plain-language reading of them.

The reading is written from the measured figures by rules stated here, never from expectations: if async does
not come out ahead, the text says so, and a step that the client rather than the server limited is named.

Everything comes from the run's :class:`runner.view.RunView`; this module and its siblings only write prose
and tables. :func:`markdown` is the entry point and puts the sections together; the tables are in
:mod:`runner.report_tables`, the model's section in :mod:`runner.report_model`, and the timeline's and the
burst's and the slow clients' sections in :mod:`runner.report_experiments`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from runner import proxy, repeats
from runner.config import DRIVER_TEXT
from runner.numbers import fmt, fmt_ms, is_number
from runner.report_drivers import driver_section
from runner.report_experiments import burst_section, slow_clients_section, timeline_section
from runner.report_model import bound_text, model_section, why
from runner.report_open import capacity_headline, capacity_section, open_section
from runner.report_proxy import proxy_section
from runner.report_tables import endpoint_table, resource_table, results_table, spread_section, time_split_table
from runner.stats import rate_interval
from runner.store import is_ok
from runner.view import Record, RunView, figure_of, slots_text
from simdb.database import SIMULATED_DRIVER

CLIENT_LIMIT_NOTE = (
    "the load generator used more than 80% of its core, so part of the latency measured there is Locust's own "
    "queueing, not the server's"
)
KEEPS_UP = 0.9  # sync "keeps up" at a level where it completes at least this share of the async throughput
# ... and where its median and p95 are at most this many times the async server's.
KEEPS_UP_LATENCY = 1.5
# The short request is "not held back" at a level where its median is at most this many times its median at the
# lowest level on the same server.
NOT_HELD_BACK = 2.0
# Mean and median further apart than this factor: the distribution is split (two humps), and one figure misleads.
SPLIT = 2.0


def split_note(step: Record, endpoint: str | None = None) -> str:
    """`` (mean X against median Y: the distribution is split)`` where mean and median differ by more than
    SPLIT times; empty otherwise."""
    mean, median = _lat(step, "mean_ms", endpoint), _lat(step, "p50_ms", endpoint)
    if not (math.isfinite(mean) and math.isfinite(median)) or min(mean, median) <= 0:
        return ""
    if max(mean, median) / min(mean, median) <= SPLIT:
        return ""
    return (
        f" (mean {fmt_ms(mean)} against median {fmt_ms(median)}: the distribution is split, neither alone describes it)"
    )


def _lat(step: Record, key: str, endpoint: str | None = None) -> float:
    """A measured step's latency figure, NaN where it has none, so that ratios of missing figures stay missing."""
    value = figure_of(step, key, endpoint)
    return math.nan if value is None else value


def _rps(step: Record) -> float:
    return float(step["figures"]["rps"])


def reading(view: RunView) -> list[str]:
    """The plain-language paragraphs, derived from the numbers."""
    sync, asyn = view.pair
    if sync is None or asyn is None:
        return _reading_without_pair(view)
    levels = [n for n in view.users if view.ok_step(sync.name, n) and view.ok_step(asyn.name, n)]
    if not levels:
        return ["No user level was measured on both servers, so there is nothing to compare yet."]
    out: list[str] = []
    low, high = levels[0], levels[-1]
    work = view.config.workload
    wait, cpu = work.page_wait_ms, work.app_work_ms
    s_low, a_low = view.by_level[(sync.name, low)], view.by_level[(asyn.name, low)]
    s_high, a_high = view.by_level[(sync.name, high)], view.by_level[(asyn.name, high)]
    page_sync, page_async = _lat(s_low, "p50_ms", "page"), _lat(a_low, "p50_ms", "page")
    calm = all(v <= 1.3 * (wait + cpu) + 15 for v in (page_sync, page_async) if math.isfinite(v))
    # The pair read here may wait on PostgreSQL or on the simulated database (a PostgreSQL scenario's baseline).
    real = view.config.database.backend == "postgres" and all(s.driver != SIMULATED_DRIVER for s in (sync, asyn))
    waits = "waits in PostgreSQL (pg_sleep)" if real else "simulated waits"
    rest = "the driver, the rows, framework, HTTP and scheduling" if real else "framework, HTTP and scheduling"
    out.append(
        f"**At {low} users** a page takes {fmt_ms(page_sync)} (sync) and {fmt_ms(page_async)} (async) at the "
        f"median, against {wait + cpu:g} ms of {waits} and work" + (f"; the rest is {rest}." if calm else ".")
    )
    if high != low:
        ratio_rps = _rps(a_high) / _rps(s_high) if _rps(s_high) > 0 else math.inf
        a_growth = _lat(a_high, "p50_ms") / _lat(a_low, "p50_ms") if _lat(a_low, "p50_ms") > 0 else math.nan
        s_growth = _lat(s_high, "p50_ms") / _lat(s_low, "p50_ms") if _lat(s_low, "p50_ms") > 0 else math.nan
        out.append(
            f"**At {high} users** the async server completed {fmt(_rps(a_high))} requests/s against the sync "
            f"server's {fmt(_rps(s_high))} (**{fmt(ratio_rps)}x**). Its median response time was "
            f"{fmt_ms(_lat(a_high, 'p50_ms'))}, {fmt(a_growth)}x its median at {low} users; the sync server's "
            f"median was {fmt_ms(_lat(s_high, 'p50_ms'))}, {fmt(s_growth)}x its median at {low} users "
            f"(p95: {fmt_ms(_lat(a_high, 'p95_ms'))} async, {fmt_ms(_lat(s_high, 'p95_ms'))} sync)."
            + "".join(f" On {rec['server']}{split}." for rec in (a_high, s_high) if (split := split_note(rec)))
        )
        kept = _kept_up(view, sync.name, asyn.name, levels)
        if kept:
            out.append(kept)
        reason = why(view, high)
        if reason:
            out.append(reason)
        for step in (s_high, a_high):
            note = burst_tail(view, step)
            if note:
                out.append(
                    f"**The first burst on {step['server']} at {high} users** (not in the figures above): {note}"
                )
        short = _short_request(view, s_high, a_high, high)
        if short:
            out.append(short)
    failing = [s for s in view.records if is_ok(s) and (s["figures"]["latency"].get("failures") or 0)]
    if failing:
        out.append(
            "**Failures:** "
            + ", ".join(f"{view.record_name(s)}: {s['figures']['latency']['failures']}" for s in failing)
            + ". Failed requests are counted apart; the response times above are of successful requests only."
        )
    limited = [view.record_name(s) for s in view.records if s.get("saturated") == "client"]
    if limited:
        out.append(f"**Client-limited steps:** {', '.join(limited)}: {CLIENT_LIMIT_NOTE}.")
    else:
        out.append("**No step was limited by the client**: Locust stayed below 80% of its core throughout.")
    return out


def _short_request(view: RunView, s_high: Record, a_high: Record, high: int) -> str:
    """Whether the short request was held back at the highest level: on each server, its median against its own
    median at the lowest level; nothing when either server has no figure for it."""
    short_s, short_a = _lat(s_high, "p50_ms", "short"), _lat(a_high, "p50_ms", "short")
    short_ms = view.config.workload.short_query_ms
    if not (math.isfinite(short_s) and math.isfinite(short_a)):
        return ""
    base_s, base_a = (_lowest_short(view, str(step["server"])) for step in (s_high, a_high))
    held = {
        kind: not (math.isfinite(base) and base > 0 and took <= NOT_HELD_BACK * base)
        for kind, took, base in (("sync", short_s, base_s), ("async", short_a, base_a))
    }
    splits = "".join(f" On {step['server']}{note}." for step in (s_high, a_high) if (note := split_note(step, "short")))
    figures = (
        f"**The short request** ({short_ms:g} ms of database time) took {fmt_ms(short_s)} (sync) and "
        f"{fmt_ms(short_a)} (async) at the median at {high} users, against {fmt_ms(base_s)} and {fmt_ms(base_a)} at "
        f"the lowest level that sent one"
    )
    if held["sync"] and short_s > 3 * short_a:
        also = (
            f" The event loop held it back too ({short_a / base_a:.1f}x its median at low load), far less."
            if held["async"] and math.isfinite(base_a) and base_a > 0
            else ""
        )
        return (
            f"{figures}: on the sync server a quick request waits in the same queue as the slow ones, because a "
            f"worker cannot start it until it has finished whatever it holds.{also}{splits}"
        )
    if not held["sync"] and not held["async"]:
        return (
            f"{figures}: on neither server was it held back (each within {NOT_HELD_BACK:g}x of its own median at low "
            f"load).{splits}"
        )
    which = " and ".join(kind for kind in ("sync", "async") if held[kind])
    return f"{figures}: held back on {which} (more than {NOT_HELD_BACK:g}x its own median at low load).{splits}"


def _lowest_short(view: RunView, server: str) -> float:
    """The short request's median at the lowest level that has one on this server (the lowest level may have
    sent no short request at all: five users send about ten requests, one in five of them short)."""
    for users in view.users:
        record = view.ok_step(server, users)
        value = _lat(record, "p50_ms", "short") if record is not None else math.nan
        if math.isfinite(value):
            return value
    return math.nan


def _kept_up(view: RunView, sync: str, asyn: str, levels: list[int]) -> str:
    """Up to which level the sync server kept up, and what the model says about where that ends."""
    kept = None
    lost = ""
    for n in levels:
        s_fig, a_fig = view.by_level[(sync, n)]["figures"], view.by_level[(asyn, n)]["figures"]
        s_rps, a_rps = s_fig["rps"], a_fig["rps"]
        if not (is_number(s_rps) and is_number(a_rps)):
            break
        # At low levels a handful of requests decides the rate: a gap inside both steps' own noise is no gap.
        s_ci, a_ci = _rate_interval(s_fig), _rate_interval(a_fig)
        overlap = s_ci is not None and a_ci is not None and s_ci[1] >= a_ci[0]
        if s_rps < KEEPS_UP * a_rps and not overlap:
            lost = f"at {n} users its throughput fell below {KEEPS_UP:.0%} of the async server's"
            break
        # Keeping up is about the users' wait as well as the rate: a server that matches the rate while its
        # requests queue for seconds has not kept up.
        slow = [
            key
            for key in ("p50_ms", "p95_ms")
            if not _lat(view.by_level[(sync, n)], key) <= KEEPS_UP_LATENCY * _lat(view.by_level[(asyn, n)], key)
        ]
        if slow:
            names = " and ".join("median" if key == "p50_ms" else "p95" for key in slow)
            lost = f"at {n} users its {names} went past {KEEPS_UP_LATENCY:g}x the async server's"
            break
        kept = n
    if kept is None or kept == levels[0]:
        return ""
    s, a = view.by_level[(sync, kept)]["figures"], view.by_level[(asyn, kept)]["figures"]
    system = view.systems[sync]
    text = (
        f"**Up to {kept} users the sync server keeps up** (at least {KEEPS_UP:.0%} of the async server's requests/s, "
        f"median and p95 within {KEEPS_UP_LATENCY:g}x of its): {fmt(s['rps'])} requests/s against {fmt(a['rps'])}, "
        f"median {fmt_ms(s['latency']['p50_ms'])} against {fmt_ms(a['latency']['p50_ms'])}, p95 "
        f"{fmt_ms(s['latency']['p95_ms'])} against {fmt_ms(a['latency']['p95_ms'])}. "
        f"The model puts its knee at about {system.knee_users:.0f} users, where "
        f"{bound_text(view, system.bottleneck.resource)} run{'' if system.bottleneck.resource == 'slots' else 's'} out"
    )
    if kept == levels[-1]:
        return text + "; it kept up at every level measured."
    return text + f"; {lost}."


def _rate_interval(figures: Mapping[str, Any]) -> tuple[float, float] | None:
    completed, window = figures.get("completed_in_window"), figures.get("window_s")
    if not isinstance(completed, int) or not is_number(window):
        return None
    return rate_interval(completed, float(window))


def _reading_without_pair(view: RunView) -> list[str]:
    """A run of one kind only (say, four ways of writing one FastAPI app): each server at the highest level it
    was measured at, side by side, and the model's reason."""
    levels = [n for n in view.users if any(view.ok_step(s.name, n) for s in view.servers)]
    if not levels:
        return ["No step was measured yet, so there is nothing to read."]
    low, high = levels[0], levels[-1]
    lines = []
    for server in view.servers:
        a, b = view.ok_step(server.name, low), view.ok_step(server.name, high)
        if a is None or b is None:
            continue
        fb = b["figures"]
        fails = fb["latency"].get("failures") or 0
        lines.append(
            f"- **{server.name}** ({slots_text(server, short=True)}): median "
            f"{fmt_ms(a['figures']['latency']['p50_ms'])} at {low} users and "
            f"{fmt_ms(fb['latency']['p50_ms'])} at {high}, {fmt(fb['rps'])} requests/s"
            + (f", {fails} failed" if fails else "")
            + (f", {fb['unfinished']} unanswered" if fb.get("unfinished") else "")
            + "."
        )
    out = [f"**At {low} and {high} users:**\n" + "\n".join(lines)]
    reason = why(view, high)
    if reason:
        out.append(reason)
    return out


def mix_service_ms(view: RunView, step: Record) -> float | None:
    """Mean time a request holds a sync worker when nothing queues: each endpoint's mean at low load, weighted by
    the configured mix. A low level has few requests, so its overall mean would follow the luck of the draw."""
    weights = view.config.load.mix
    endpoints = step["figures"]["endpoints"]
    total = sum(weights.values())
    if total > 0 and all(weights[e] == 0 or is_number(endpoints.get(e, {}).get("mean_ms")) for e in weights):
        return float(sum(weights[e] * float(endpoints[e]["mean_ms"]) for e in weights if weights[e]) / total)
    mean = step["figures"]["latency"].get("mean_ms")
    return float(mean) if is_number(mean) else None


def burst_tail(view: RunView, step: Record) -> str | None:
    """Explain a step whose slowest requests were sent during the warm-up: the tail of the initial burst.

    What bounds how fast a burst clears differs by kind: a sync server serves it at most ``workers`` at a time,
    each holding a worker for the request's whole time; an event loop serves it as fast as its CPU allows."""
    figures = step.get("figures") or {}
    count = figures.get("burst_requests") or 0
    slowest = figures.get("burst_max_ms") or 0.0
    p50 = (figures.get("latency") or {}).get("p50_ms")
    if not count or not is_number(p50) or slowest < max(1000.0, 3 * p50):
        return None
    text = (
        f"every user sends its first request at the same moment, and the slowest of those {count} first "
        f"requests took {fmt_ms(slowest)}; {figures.get('from_warmup') or 0} of them were still running when "
        f"the warm-up ended. They are reported here, not in the step's figures"
    )
    users = int(step["users"])
    if step.get("kind") == "sync":
        lowest = view.lowest_ok_record(step["server"])
        service = mix_service_ms(view, lowest) if lowest else None
        spec = view.server(step["server"])
        workers = int((spec.slots if spec else None) or step.get("workers") or 1)
        if service:
            text += (
                f". {workers} slot(s) holding each request about {service:.0f} ms need about "
                f"{users * service / 1000 / workers:.1f} s to serve {users} requests that arrive together"
            )
        return text + "."
    cpu, rps = step.get("server_cpu_pct"), figures.get("rps")
    if is_number(cpu) and is_number(rps):
        per_request = float(cpu) / 100 / float(rps)
        text += (
            f". At about {per_request * 1000:.1f} ms of server CPU per request, one core needs about "
            f"{users * per_request:.1f} s to serve {users} requests that arrive together"
        )
    return text + "."


def _measured_share(view: RunView, wait_ms: float) -> str:
    """What share of the time a client saw was waiting: framework and HTTP add to the configured time."""
    measured = [value for s in view.records if is_number(value := figure_of(s, "p50_ms", "page"))]
    if not measured or wait_ms <= 0:
        return ""
    lowest = min(measured)
    return f"; as measured (fastest median page, {lowest:.0f} ms) about {wait_ms / lowest * 100:.0f}%"


def _database_line(view: RunView) -> str:
    """What the requests waited on: the simulated database's settings, or the real one's, with its drivers, pools
    and where its CPU ran."""
    db = view.config.database
    if db.backend != "postgres":
        return f"- **Database:** jitter ±{db.jitter * 100:g}% (seed {db.seed}), " + (
            f"at most {db.capacity} queries at once per process." if db.capacity else "no connection limit."
        )
    facts = view.metadata.get("database") or {}
    drivers = ", ".join(f"{s.name} {DRIVER_TEXT.get(s.driver or '', s.driver or '?')}" for s in view.servers)
    return (
        f"- **Database:** a real PostgreSQL ({facts.get('text', 'not recorded')}); {db.pool_size} pooled connections "
        f"per server process; drivers: {drivers}. Each query waits its scenario time with `pg_sleep` inside the "
        f"query, so its connection is held for the wait. CPU: {facts.get('cpu_pinning', 'not recorded')}. Benchmark "
        "settings (fsync, synchronous_commit and full_page_writes off) are fair here: nothing needs to survive a "
        "crash, and the queries only read."
    )


def _setup(view: RunView) -> list[str]:
    config, meta = view.config, view.metadata
    load, work = config.load, config.workload
    wait, cpu = work.page_wait_ms, work.app_work_ms
    share = wait / (wait + cpu) * 100 if wait + cpu > 0 else 0.0
    packages = meta.get("packages", {})
    git = meta.get("git") or {}
    lines = [
        f"- **Machine:** {meta.get('cpu_model')}, {meta.get('cpu_count')} cores, {meta.get('memory_gb')} GiB; "
        f"{meta.get('os')}; Python {meta.get('python')}.",
        f"- **CPU budget:** {meta.get('cpu_pinning')}. Every server configuration gets the same core(s).",
    ]
    # Each server's connection handling beside its slots: a closed connection costs the next request a new one.
    # Behind a proxy the client's connection is nginx's; the app's keep-alive is then between nginx and the app.
    lines += [
        f"- **{s.name}:** {slots_text(s)}; "
        + (
            f"{s.keep_alive_text(load.think_time_s)}."
            if s.proxy is None
            else f"{proxy.setup_text(s)}; between nginx and the app, {s.keep_alive_text()}."
        )
        for s in view.servers
    ]
    lines += [
        f"- **Page request:** user lookup {work.user_lookup_ms:g} ms, Python work {work.app_work_ms:g} ms "
        f"(CPU time, holding the GIL), listing query {work.listing_ms:g} ms, {work.listing_rows} rows of "
        f"JSON: {share:.0f}% of the configured time is waiting{_measured_share(view, wait)}.",
        f"- **Short request:** one {work.short_query_ms:g} ms query. Mix: {load.page_weight} pages to "
        f"{load.short_weight} short requests.",
        _database_line(view),
        f"- **Load:** Locust `FastHttpUser`, all users spawned at once; think time uniform "
        f"{load.think_time_s[0]:g}-{load.think_time_s[1]:g} s; request timeout {load.request_timeout_s:g} s.",
        f"- **Each step:** a fresh server; {load.warmup_s:g} s warm-up (discarded), {load.measure_s:g} s "
        f"measured window, then up to {load.drain_s:g} s for requests still in flight to finish.",
        "- **Software:** " + ", ".join(f"{k} {v}" for k, v in packages.items()) + ".",
        f"- **Code:** commit {git.get('commit') or 'unknown'}"
        + (" (with uncommitted changes)" if git.get("dirty") else "")
        + f"; scenario `{config.source.rsplit('/', 1)[-1]}` (sha256 {config.source_sha256[:12]}…).",
    ]
    lines += [f"- **Override:** {applied}" for applied in config.overrides]
    return lines


METHOD_NOTES = [
    "- **The sample** of each step is every request *sent* inside the measured window, followed to its end: requests "
    "still in flight when the window closed were allowed to finish (the drain). Requests sent during the warm-up "
    "are left out even if they finished inside the window; after a burst they are its tail, reported apart as the "
    "*first burst*. A request not answered even after the drain is counted as *unfinished* and flagged.",
    "- **Response times** are exact (from the per-request log) and describe successful requests; failures are "
    "counted apart. p90 is given from 10 requests, p95 from 20, p99 from 100; with fewer it is left blank (`n` is "
    "the sample size), since it would only be the maximum under another name.",
    "- **Throughput** counts successful requests that completed inside the window, divided by its length.",
    "- **Locust's own p95** (its histogram buckets, over every request completed after the warm-up) is shown beside "
    "ours as a cross-check; it includes the burst's tail where there is one.",
    "- **Closed loop:** each user waits for its answer before thinking and asking again, so a stalled server also "
    "slows the arrivals; latency percentiles under-sample stalls (coordinated omission). Read the sync server's "
    "high-load percentiles as lower bounds on what an open stream of users would see.",
    "- **Server CPU and memory** are summed over the server's whole process tree (master and workers). RSS counts "
    "pages shared between forked workers once per worker; PSS shares them out and is the tree's real cost.",
    "- **Repeats:** a scenario may measure each step several times (`repeats`), each time with a fresh server and "
    "Locust run, in the order user level, then repeat, then server. Tables and charts then show, per server and "
    "level, the repeat in the middle of the throughput order (the lower middle one for an even count) with its "
    "throughput, p50, p95 and mean replaced by their medians over the repeats; its other figures (p90, p99, max, "
    "per endpoint, CPU, memory) are that repeat's own. The spread over repeats is (max − min) / median; a step is "
    f"flagged when that of throughput or of the median exceeds {repeats.FLAG_SPREAD_PCT:g}%.",
]


STATUS_TEXT = {
    "running": "This run did not finish: it was stopped before it could record its end (killed, or still running).",
    "interrupted": "This run was interrupted; the steps measured before that are shown.",
    "incomplete": "This run is incomplete: some steps failed.",
    "failed": "This run failed before all its steps were measured.",
}


def _banner(view: RunView) -> list[str]:
    """Above everything, for a run that is not complete: why, which steps are missing and which failed."""
    status = view.status
    if status == "complete":
        return []
    lines = [f"> **{STATUS_TEXT.get(status, f'This run is {status}.')}**"]
    missing = view.missing_steps()
    if missing:
        lines += ["> Missing steps: " + ", ".join(view.step_name(*step) for step in missing) + "."]
    for step in view.records:
        if step.get("status") != "ok":
            first = (step.get("error") or "failed").splitlines()[0]
            lines += [f"> Failed: {view.record_name(step)}: {first}"]
    return [*lines, ""]


def _step_notes(view: RunView) -> list[str]:
    """What each measured step noted about itself, and the tail of its first burst."""
    notes = [
        f"- {view.record_name(s)}: {n}"
        for s in view.records
        if is_ok(s)
        for n in [*s["figures"].get("notes", []), burst_tail(view, s)]
        if n
    ]
    return ["### Notes from the steps", "", *notes, ""] if notes else []


def markdown(view: RunView) -> str:
    """The whole of ``report.md``."""
    config = view.config
    lines = [f"# Sync vs async: `{config.name}`", ""]
    if config.description:
        lines += [config.description.strip(), ""]
    lines += _banner(view)
    lines += capacity_headline(view)
    closed = config.load.closed or bool(view.records)  # an open-only run has no user levels to read
    if closed:
        lines += ["## Reading", ""]
        for paragraph in reading(view):
            lines += [paragraph, ""]
        lines += ["![Response times](charts/response_times.png)", "", "![Throughput](charts/throughput.png)", ""]
    lines += timeline_section(view)
    lines += burst_section(view)
    lines += slow_clients_section(view)
    lines += open_section(view)
    lines += capacity_section(view)
    if closed:
        lines += ["## Results per user level", ""]
        lines += results_table(view)
        lines += ["", "† the client used more than 80% of its core in this step (see below).", ""]
        lines += ["### Page and short requests separately", "", *endpoint_table(view), ""]
        lines += ["### Resources and step accounting", "", *resource_table(view), ""]
        lines += ["![CPU and memory per level](charts/resources.png)", ""]
        lines += time_split_table(view)
        lines += spread_section(view)
        lines += _step_notes(view)
        lines += driver_section(view)
        lines += proxy_section(view)
        lines += model_section(view)
    lines += ["## What was run", "", *_setup(view), ""]
    lines += ["## How the numbers were measured", "", *METHOD_NOTES, ""]
    return "\n".join(lines)
