"""``report.md``: what was run, the numbers per level, and a plain-language reading of them.

The reading is written from the measured figures by rules stated here, never from expectations: if async does
not come out ahead, the text says so, and a step that the client rather than the server limited is named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeGuard

from runner import expected, repeats
from runner.config import ServerConfig
from runner.stats import rate_interval

CLIENT_LIMIT_NOTE = (
    "the load generator used more than 80% of its core, so part of the latency measured there is Locust's own "
    "queueing, not the server's"
)


def _fmt_ms(value: Any) -> str:
    """A duration with its unit: ``12.0 ms``, ``110 ms``, ``9.6 s``."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    if value >= 1_000:
        return f"{value / 1000:.1f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    return f"{value:.1f} ms"


def _fmt(value: Any, digits: int = 1) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def _ok(step: dict[str, Any] | None) -> bool:
    return step is not None and step.get("status") == "ok"


def kind_of(server: dict[str, Any]) -> str:
    """sync or async, as ServerConfig defines it (a config saved before worker classes existed rebuilds too)."""
    return ServerConfig.from_dict(server).kind


def steps_by_level(run: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """One record per (server, users), what every table and chart shows: with repeats, the combined record of
    :func:`runner.repeats.combine` (the medians as its headline figures), without them the step's own record."""
    return {key: group.record for key, group in repeats.combine(run).items()}


def slots_text(server: dict[str, Any], short: bool = False) -> str:
    """How many requests a configuration can work on at once: the number every comparison must state."""
    spec = ServerConfig.from_dict(server)
    head = f"{spec.server}, {spec.describe()}"
    if short:
        return head
    if spec.slots is None:
        return f"{head}: no per-request slot limit"
    return f"{head}: at most {spec.slots} request{'s' if spec.slots != 1 else ''} at once"


def page_service_ms(config: dict[str, Any]) -> tuple[float, float]:
    """(wait, CPU work) of one page as configured, in ms."""
    w = config["workload"]
    return float(w["user_lookup_ms"]) + float(w["listing_ms"]), float(w["app_work_ms"])


def headline_setup(run: dict[str, Any]) -> str:
    config = run["config"]
    meta = run["metadata"]
    load = config["load"]
    wait, work = page_service_ms(config)
    return (
        f"{config['name']}: page = {wait:g} ms of database waits + {work:g} ms of Python work, "
        f"short = {config['workload']['short_query_ms']:g} ms query; think time "
        f"{load['think_time_s'][0]:g}-{load['think_time_s'][1]:g} s; {meta.get('cpu_count')} cores "
        f"({meta.get('cpu_model', '?')}); {meta.get('date', '')[:10]}"
    )


def _pair(run: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    servers = run["config"]["servers"]
    sync = next((s for s in servers if kind_of(s) == "sync"), None)
    asyn = next((s for s in servers if kind_of(s) == "async"), None)
    return sync, asyn


def reading(run: dict[str, Any]) -> list[str]:
    """The plain-language paragraphs, derived from the numbers."""
    config = run["config"]
    steps = steps_by_level(run)
    sync, asyn = _pair(run)
    out: list[str] = []
    if sync is None or asyn is None:
        return _reading_without_pair(run)
    levels = [
        n for n in config["load"]["users"] if _ok(steps.get((sync["name"], n))) and _ok(steps.get((asyn["name"], n)))
    ]
    if not levels:
        return ["No user level was measured on both servers, so there is nothing to compare yet."]
    low, high = levels[0], levels[-1]
    wait, work = page_service_ms(config)
    s_low, a_low = steps[(sync["name"], low)], steps[(asyn["name"], low)]
    s_high, a_high = steps[(sync["name"], high)], steps[(asyn["name"], high)]

    def lat(step: dict[str, Any], key: str, endpoint: str | None = None) -> float:
        data = step["figures"]["latency"] if endpoint is None else step["figures"]["endpoints"].get(endpoint, {})
        value = data.get(key)
        return float(value) if isinstance(value, int | float) else math.nan

    def rps(step: dict[str, Any]) -> float:
        return float(step["figures"]["rps"])

    page_sync, page_async = lat(s_low, "p50_ms", "page"), lat(a_low, "p50_ms", "page")
    calm = all(v <= 1.3 * (wait + work) + 15 for v in (page_sync, page_async) if math.isfinite(v))
    out.append(
        f"**At {low} users** a page takes {_fmt_ms(page_sync)} (sync) and {_fmt_ms(page_async)} (async) at the "
        f"median, against {wait + work:g} ms of simulated waits and work"
        + ("; the rest is framework, HTTP and scheduling." if calm else ".")
    )
    if high != low:
        ratio_rps = rps(a_high) / rps(s_high) if rps(s_high) > 0 else math.inf
        a_growth = lat(a_high, "p50_ms") / lat(a_low, "p50_ms") if lat(a_low, "p50_ms") > 0 else math.nan
        s_growth = lat(s_high, "p50_ms") / lat(s_low, "p50_ms") if lat(s_low, "p50_ms") > 0 else math.nan
        out.append(
            f"**At {high} users** the async server completed {_fmt(rps(a_high))} requests/s against the sync "
            f"server's {_fmt(rps(s_high))} (**{_fmt(ratio_rps)}x**). Its median response time was "
            f"{_fmt_ms(lat(a_high, 'p50_ms'))}, {_fmt(a_growth)}x its median at {low} users; the sync server's "
            f"median was {_fmt_ms(lat(s_high, 'p50_ms'))}, {_fmt(s_growth)}x its median at {low} users "
            f"(p95: {_fmt_ms(lat(a_high, 'p95_ms'))} async, {_fmt_ms(lat(s_high, 'p95_ms'))} sync)."
        )
        kept = _kept_up(run, sync, asyn, levels)
        if kept:
            out.append(kept)
        why = _why(run, high)
        if why:
            out.append(why)
        for step in (s_high, a_high):
            note = burst_tail(run, step)
            if note:
                out.append(
                    f"**The first burst on {step['server']} at {high} users** (not in the figures above): {note}"
                )
        short_s, short_a = lat(s_high, "p50_ms", "short"), lat(a_high, "p50_ms", "short")
        short_ms = config["workload"]["short_query_ms"]
        if math.isfinite(short_s) and math.isfinite(short_a) and short_s > 3 * short_a:
            out.append(
                f"**The short request** ({short_ms:g} ms of database time) took {_fmt_ms(short_s)} on the sync "
                f"server at {high} users and {_fmt_ms(short_a)} on the async one: on a sync server a quick request "
                f"waits in the same queue as the slow ones, because a worker cannot start it until it has finished "
                f"whatever it holds."
            )
        elif math.isfinite(short_s) and math.isfinite(short_a):
            out.append(
                f"**The short request** ({short_ms:g} ms of database time) took {_fmt_ms(short_s)} (sync) and "
                f"{_fmt_ms(short_a)} (async) at {high} users: no queue for a worker held it back noticeably."
            )
    failing = [s for s in run["steps"] if _ok(s) and (s["figures"]["latency"].get("failures") or 0)]
    if failing:
        out.append(
            "**Failures:** "
            + ", ".join(f"{_name(run, s)}: {s['figures']['latency']['failures']}" for s in failing)
            + ". Failed requests are counted apart; the response times above are of successful requests only."
        )
    limited = [_name(run, s) for s in run["steps"] if s.get("saturated") == "client"]
    if limited:
        out.append(f"**Client-limited steps:** {', '.join(limited)}: {CLIENT_LIMIT_NOTE}.")
    else:
        out.append("**No step was limited by the client**: Locust stayed below 80% of its core throughout.")
    return out


KEEPS_UP = 0.9  # sync "keeps up" at a level where it completes at least this share of the async throughput


def _kept_up(run: dict[str, Any], sync: dict[str, Any], asyn: dict[str, Any], levels: list[int]) -> str:
    """Up to which level the sync server kept up, and what the model says about where that ends."""
    steps = steps_by_level(run)
    kept = None
    for n in levels:
        s_fig, a_fig = steps[(sync["name"], n)]["figures"], steps[(asyn["name"], n)]["figures"]
        s_rps, a_rps = s_fig["rps"], a_fig["rps"]
        if not (is_number(s_rps) and is_number(a_rps)):
            break
        # At low levels a handful of requests decides the rate: a gap inside both steps' own noise is no gap.
        s_ci, a_ci = _rate_interval(s_fig), _rate_interval(a_fig)
        overlap = s_ci is not None and a_ci is not None and s_ci[1] >= a_ci[0]
        if s_rps < KEEPS_UP * a_rps and not overlap:
            break
        kept = n
    if kept is None or kept == levels[0]:
        return ""
    s, a = steps[(sync["name"], kept)]["figures"], steps[(asyn["name"], kept)]["figures"]
    system, _ = expected.systems(run)[sync["name"]]
    text = (
        f"**Up to {kept} users the sync server keeps up**: {_fmt(s['rps'])} requests/s against {_fmt(a['rps'])}, "
        f"median {_fmt_ms(s['latency']['p50_ms'])} against {_fmt_ms(a['latency']['p50_ms'])}, p95 "
        f"{_fmt_ms(s['latency']['p95_ms'])} against {_fmt_ms(a['latency']['p95_ms'])}. "
        f"The model puts its knee at about {system.knee_users:.0f} users, where "
        f"{BOUND_TEXT[system.bottleneck.resource]} run{'' if system.bottleneck.resource == 'slots' else 's'} out"
    )
    if kept == levels[-1]:
        return text + "; it kept up at every level measured."
    return text + "; past that the async server pulls ahead."


def _rate_interval(figures: dict[str, Any]) -> tuple[float, float] | None:
    completed, window = figures.get("completed_in_window"), figures.get("window_s")
    if not isinstance(completed, int) or not is_number(window):
        return None
    return rate_interval(completed, float(window))


def _reading_without_pair(run: dict[str, Any]) -> list[str]:
    """A run of one kind only (say, four ways of writing one FastAPI app): each server at the highest level it
    was measured at, side by side, and the model's reason."""
    steps = steps_by_level(run)
    levels = [
        n
        for n in run["config"]["load"]["users"]
        if any(_ok(steps.get((s["name"], n))) for s in run["config"]["servers"])
    ]
    if not levels:
        return ["No step was measured yet, so there is nothing to read."]
    low, high = levels[0], levels[-1]
    lines = []
    for server in run["config"]["servers"]:
        a, b = steps.get((server["name"], low)), steps.get((server["name"], high))
        if not (_ok(a) and _ok(b)):
            continue
        assert a is not None and b is not None
        fb = b["figures"]
        fails = fb["latency"].get("failures") or 0
        lines.append(
            f"- **{server['name']}** ({slots_text(server, short=True)}): median "
            f"{_fmt_ms(a['figures']['latency']['p50_ms'])} at {low} users and "
            f"{_fmt_ms(fb['latency']['p50_ms'])} at {high}, {_fmt(fb['rps'])} requests/s"
            + (f", {fails} failed" if fails else "")
            + (f", {fb['unfinished']} unanswered" if fb.get("unfinished") else "")
            + "."
        )
    out = [f"**At {low} and {high} users:**\n" + "\n".join(lines)]
    why = _why(run, high)
    if why:
        out.append(why)
    return out


def mix_service_ms(run: dict[str, Any], step: dict[str, Any]) -> float | None:
    """Mean time a request holds a sync worker when nothing queues: each endpoint's mean at low load, weighted by
    the configured mix. A low level has few requests, so its overall mean would follow the luck of the draw."""
    load = run["config"]["load"]
    weights = {"page": load["page_weight"], "short": load["short_weight"]}
    endpoints = step["figures"]["endpoints"]
    total = sum(weights.values())
    if total > 0 and all(weights[e] == 0 or is_number(endpoints.get(e, {}).get("mean_ms")) for e in weights):
        return float(sum(weights[e] * float(endpoints[e]["mean_ms"]) for e in weights if weights[e]) / total)
    mean = step["figures"]["latency"].get("mean_ms")
    return float(mean) if is_number(mean) else None


def _lowest_ok_step(run: dict[str, Any], server: str) -> dict[str, Any] | None:
    measured = [s for s in run["steps"] if s["server"] == server and _ok(s)]
    return min(measured, key=lambda s: int(s["users"])) if measured else None


def is_finite(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_number(value: Any) -> TypeGuard[int | float]:
    """A positive, finite figure: what a duration, a rate or a CPU share must be to divide by or compare."""
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def burst_tail(run: dict[str, Any], step: dict[str, Any]) -> str | None:
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
        f"requests took {_fmt_ms(slowest)}; {figures.get('from_warmup') or 0} of them were still running when "
        f"the warm-up ended. They are reported here, not in the step's figures"
    )
    users = int(step["users"])
    if step.get("kind") == "sync":
        lowest = _lowest_ok_step(run, step["server"])
        service = mix_service_ms(run, lowest) if lowest else None
        config = next((s for s in run["config"]["servers"] if s["name"] == step["server"]), None)
        slots = ServerConfig.from_dict(config).slots if config else None
        workers = int(slots or step.get("workers") or 1)
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


def _why(run: dict[str, Any], high: int) -> str:
    """Explain the highest level with the queueing model, server by server, claiming only what the numbers support.

    A server whose bounding resource can hold k requests for s seconds each finishes at most k / s requests/s;
    N users thinking Z ask for N / (Z + S). Which of the two is smaller decides whether requests queue.
    """
    models = expected.systems(run)
    exps = expected.expectations(run)
    parts = []
    offered = None
    for server in run["config"]["servers"]:
        name = server["name"]
        e = exps.get((name, high))
        step = steps_by_level(run).get((name, high))
        if e is None or not _ok(step) or e.measured_rps is None:
            continue
        assert step is not None
        system, _ = models[name]
        p = e.prediction
        offered = p.offered_rps
        station = system.bottleneck
        limit = {
            "slots": f"{station.servers} slot(s) each held ~{station.service_s * 1000:.0f} ms",
            "cpu": f"{station.servers} core(s) at ~{station.service_s * 1000:.1f} ms of CPU per request",
            "database": f"{station.servers} database connection(s) each held ~{station.service_s * 1000:.0f} ms",
        }[station.resource]
        text = (
            f"**{name}** can finish at most {system.max_rps:.0f} requests/s ({limit}); its knee is at about "
            f"{system.knee_users:.0f} users"
        )
        if p.bound_by == "users":
            text += f", so at {high} users it serves what they ask: {e.measured_rps:.0f}/s measured"
        else:
            text += f", so at {high} users requests queue for {BOUND_TEXT[p.bound_by]}: {e.measured_rps:.0f}/s measured"
        text += f" (model {p.model_rps:.0f}/s)."
        cpu = step.get("server_cpu_pct")
        if is_number(cpu):
            if p.bound_by == "slots" and cpu < 60:
                text += f" Its CPU was at {cpu:.0f}%: it was mostly waiting, not working."
            elif cpu >= 70:
                text += f" It used {cpu:.0f}% CPU: CPU is its nearest limit, and latency grows as it approaches it."
        parts.append(text)
    if not parts or offered is None:
        return ""
    return f"**Why, by the queueing model:** {high} users thinking between requests ask for about {offered:.0f}/s. " + (
        " ".join(parts)
    )


def _table(run: dict[str, Any]) -> list[str]:
    servers = run["config"]["servers"]
    steps = steps_by_level(run)
    sync, asyn = _pair(run)
    head = ["users"]
    for s in servers:
        head += [f"{s['name']} req/s", "n", "p50", "p95", "p99", "max", "fail"]
    if sync and asyn:
        head += ["req/s async÷sync", "p50 sync÷async", "p95 sync÷async"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in run["config"]["load"]["users"]:
        cells = [str(n)]
        for s in servers:
            step = steps.get((s["name"], n))
            if not _ok(step):
                status = "missing" if step is None else "failed"
                cells += [status, "", "", "", "", "", ""]
                continue
            assert step is not None
            f, lat = step["figures"], step["figures"]["latency"]
            mark = " †" if step.get("saturated") == "client" else ""
            fails = f"{lat['failures']}" + (f" (+{f['unfinished']} unfinished)" if f.get("unfinished") else "")
            cells += [
                _fmt(f["rps"]) + mark,
                str(lat.get("requests", "")),
                _fmt_ms(lat["p50_ms"]),
                _fmt_ms(lat["p95_ms"]),
                _fmt_ms(lat["p99_ms"]),
                _fmt_ms(lat["max_ms"]),
                fails,
            ]
        if sync and asyn:
            a, b = steps.get((asyn["name"], n)), steps.get((sync["name"], n))
            if _ok(a) and _ok(b):
                assert a is not None and b is not None
                cells += [
                    _ratio(a["figures"]["rps"], b["figures"]["rps"]),
                    _ratio(b["figures"]["latency"]["p50_ms"], a["figures"]["latency"]["p50_ms"]),
                    _ratio(b["figures"]["latency"]["p95_ms"], a["figures"]["latency"]["p95_ms"]),
                ]
            else:
                cells += ["", "", ""]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _ratio(a: Any, b: Any) -> str:
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (a, b)) or b <= 0:
        return "–"
    return f"{a / b:.1f}x"


def _endpoint_table(run: dict[str, Any]) -> list[str]:
    servers = run["config"]["servers"]
    steps = steps_by_level(run)
    head = ["users"] + [f"{s['name']} {e} p50 / p95" for s in servers for e in ("page", "short")]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in run["config"]["load"]["users"]:
        cells = [str(n)]
        for s in servers:
            step = steps.get((s["name"], n))
            for endpoint in ("page", "short"):
                data = step["figures"]["endpoints"].get(endpoint) if _ok(step) and step else None
                cells.append(f"{_fmt_ms(data['p50_ms'])} / {_fmt_ms(data['p95_ms'])}" if data else "–")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _resource_table(run: dict[str, Any]) -> list[str]:
    head = ["server", "users", "client CPU %", "server CPU %", "server RSS MB", "server PSS MB", "drained",
            "unfinished", "first-burst max", "Locust p95 (cross-check)", "saturated"]  # fmt: skip
    repeated = repeats.planned_repeats(run) > 1
    if repeated:
        head.insert(2, "repeat")
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for step in run["steps"]:
        if not _ok(step):
            continue
        f = step["figures"]
        rows.append(
            "| "
            + " | ".join(
                [
                    step["server"],
                    str(step["users"]),
                    *([str(repeats.repeat_of(step))] if repeated else []),
                    _fmt(f.get("client_cpu_pct"), 0),
                    _fmt(step.get("server_cpu_pct"), 0),
                    _fmt(step.get("server_rss_mb"), 0),
                    _fmt(step.get("server_pss_mb"), 0),
                    str(f.get("drained", "")),
                    str(f.get("unfinished", "")),
                    _fmt_ms(f.get("burst_max_ms")),
                    _fmt_ms((f.get("locust") or {}).get("p95_ms")),
                    step.get("saturated") or "",
                ]
            )
            + " |"
        )
    return rows


def _measured_share(run: dict[str, Any], wait_ms: float) -> str:
    """What share of the time a client saw was waiting: framework and HTTP add to the configured time."""
    measured = [
        float(s["figures"]["endpoints"]["page"]["p50_ms"])
        for s in run["steps"]
        if _ok(s) and is_number(((s["figures"].get("endpoints") or {}).get("page") or {}).get("p50_ms"))
    ]
    if not measured or wait_ms <= 0:
        return ""
    lowest = min(measured)
    return f"; as measured (fastest median page, {lowest:.0f} ms) about {wait_ms / lowest * 100:.0f}%"


def _setup(run: dict[str, Any]) -> list[str]:
    config, meta = run["config"], run["metadata"]
    load, work, db = config["load"], config["workload"], config["database"]
    wait, cpu = page_service_ms(config)
    share = wait / (wait + cpu) * 100 if wait + cpu > 0 else 0.0
    packages = meta.get("packages", {})
    git = meta.get("git") or {}
    lines = [
        f"- **Machine:** {meta.get('cpu_model')}, {meta.get('cpu_count')} cores, {meta.get('memory_gb')} GiB; "
        f"{meta.get('os')}; Python {meta.get('python')}.",
        f"- **CPU budget:** {meta.get('cpu_pinning')}. Every server configuration gets the same core(s).",
    ]
    for s in config["servers"]:
        lines.append(f"- **{s['name']}:** {slots_text(s)}.")
    lines += [
        f"- **Page request:** user lookup {work['user_lookup_ms']:g} ms, Python work {work['app_work_ms']:g} ms "
        f"(CPU time, holding the GIL), listing query {work['listing_ms']:g} ms, {work['listing_rows']} rows of "
        f"JSON: {share:.0f}% of the configured time is waiting{_measured_share(run, wait)}.",
        f"- **Short request:** one {work['short_query_ms']:g} ms query. Mix: {load['page_weight']} pages to "
        f"{load['short_weight']} short requests.",
        f"- **Database:** jitter ±{db['jitter'] * 100:g}% (seed {db['seed']}), "
        + (f"at most {db['capacity']} queries at once per process." if db["capacity"] else "no connection limit."),
        f"- **Load:** Locust `FastHttpUser`, all users spawned at once; think time uniform "
        f"{load['think_time_s'][0]:g}-{load['think_time_s'][1]:g} s; request timeout {load['request_timeout_s']:g} s.",
        f"- **Each step:** a fresh server; {load['warmup_s']:g} s warm-up (discarded), {load['measure_s']:g} s "
        f"measured window, then up to {load['drain_s']:g} s for requests still in flight to finish.",
        "- **Software:** " + ", ".join(f"{k} {v}" for k, v in packages.items()) + ".",
        f"- **Code:** commit {git.get('commit') or 'unknown'}"
        + (" (with uncommitted changes)" if git.get("dirty") else "")
        + f"; scenario `{config['source'].rsplit('/', 1)[-1]}` (sha256 {config['source_sha256'][:12]}…).",
    ]
    for applied in config.get("overrides", []):
        lines.append(f"- **Override:** {applied}")
    return lines


def _timeline_section(run: dict[str, Any]) -> list[str]:
    """Three requests arriving together, read from the measured timeline (when the run has one)."""
    data = run.get("timeline")
    if not isinstance(data, dict):
        return []
    if data.get("error"):
        return ["## Three requests arriving together", "", f"The timeline could not be measured: {data['error']}", ""]
    from runner.timeline import shown_round  # noqa: PLC0415 (the timeline module starts servers; load it late)

    lines = ["## Three requests arriving together", ""]
    for name, server in data.get("servers", {}).items():
        probes = {p["label"]: p for p in shown_round(server["rounds"])}
        short, pages = probes.get("short"), [p for label, p in probes.items() if label != "short"]
        if not short or not pages:
            continue
        took = (short["received"] - short["sent"]) * 1000
        last_page = max((p["received"] - p["sent"]) * 1000 for p in pages)
        order = "after both pages" if short["received"] > max(p["received"] for p in pages) else "before the pages"
        lines.append(
            f"- **{name}** ({'one sync worker' if server['kind'] == 'sync' else 'one event loop'}): the short request "
            f"came back {order}, after {took:.0f} ms (the slower page: {last_page:.0f} ms)."
        )
    return [*lines, "", "![Timeline](charts/timeline.png)", ""]


BOUND_TEXT = {
    "slots": "its slots (requests in service at once)",
    "cpu": "its CPU",
    "database": "the database's capacity",
}


def _model_section(run: dict[str, Any]) -> list[str]:
    """The queueing model beside every step: each server's capacity, knee and bounding resource, then per step the
    measured and modelled throughput and mean, with any step further than the tolerance explained."""
    lines = ["## What the queueing model expects", ""]
    models = expected.systems(run)
    exps = expected.expectations(run)
    steps = steps_by_level(run)
    load = run["config"]["load"]
    think = (load["think_time_s"][0] + load["think_time_s"][1]) / 2
    lines.append(
        f"A closed loop of N users thinking {think:g} s on average (Z) between requests. Waits come from the "
        "scenario; CPU per request is the app's work plus the framework's cost, measured by the service-demand law "
        f"(CPU seconds / requests) over the server's steps below {expected.CALIBRATION_MAX_CPU_PCT:.0f}% CPU, so "
        "where the CPU is the limit the throughput is still a prediction. Throughput can be no more than "
        "min(N / (S + Z), capacity); the dashed curves in the charts are the exact finite-population (M/M/k//N) "
        "solution for the bounding resource. Real waits vary less than the model's exponential ones, so "
        "measurements should sit between the curve and the bound."
    )
    lines.append("")
    for server in run["config"]["servers"]:
        name = server["name"]
        system, calibration = models[name]
        capacities = ", ".join(f"{res} {rps:.0f}/s" for res, rps in system.capacities_rps.items())
        source = (
            f"{calibration.overhead_ms:.1f} ms of framework CPU per request, measured over {calibration.steps} steps"
            if calibration.steps
            else f"{calibration.overhead_ms:.1f} ms of framework CPU per request assumed (no step could measure it)"
        )
        top = max((int(n) for n in load["users"]), default=0)
        knee = system.knee_users
        beyond = " (beyond this sweep)" if knee > top else ""
        lines.append(
            f"- **{name}** ({slots_text(server)}): a request is in service {system.demand.service_s * 1000:.1f} ms "
            f"on average (S) and needs {system.demand.cpu_s * 1000:.1f} ms of CPU ({source}). Capacity: {capacities}; "
            f"bound by {BOUND_TEXT[system.bottleneck.resource]} at {system.max_rps:.1f} requests/s. "
            f"Knee: about **{knee:.0f} users**{beyond}, where requests start to queue."
        )
    lines += [
        "",
        "| server | users | req/s measured | 95% interval | model req/s | bound by | efficiency | mean | model mean |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    outside = []
    for n in load["users"]:
        for server in run["config"]["servers"]:
            key = (server["name"], int(n))
            e = exps.get(key)
            step = steps.get(key)
            if e is None or step is None or not _ok(step):
                continue
            p = e.prediction
            interval = f"{e.rps_interval[0]:.1f}-{e.rps_interval[1]:.1f}" if e.rps_interval else "–"
            mark = ""
            if e.outside:
                mark = " ‡"
                outside.append(f"- {server['name']} at {n} users: {expected.explain(e, step, server)}.")
            # Requests never answered are missing from the measured mean, which then describes the lucky ones only.
            unanswered = (step.get("figures") or {}).get("unfinished") or 0
            mean = _fmt_ms(e.measured_mean_ms) + (f" (+{unanswered} unanswered) §" if unanswered else "")
            lines.append(
                f"| {server['name']} | {n} | {_fmt(e.measured_rps)} | {interval} | {p.model_rps:.1f} | {p.bound_by} "
                f"| {_fmt(e.efficiency, 2)}{mark} | {mean} | {_fmt_ms(p.model_mean_ms)} |"
            )
    lines.append("")
    tolerance = f"{expected.TOLERANCE * 100:.0f}%"
    if outside:
        lines += [f"‡ further than {tolerance} from the model:", "", *outside, ""]
    else:
        lines += [f"Every measured step is within {tolerance} of the model's throughput.", ""]
    lines.append(
        "The measured mean is the client's: it adds the network, HTTP parsing and Locust's own scheduling to what "
        "the model counts, a few ms per request at low load."
    )
    if any((s.get("figures") or {}).get("unfinished") for s in steps.values() if _ok(s)):
        lines += [
            "",
            "§ Some requests sent in this step's window were still unanswered when its drain ran out. The measured "
            "mean covers only the answered ones, so it is not comparable with the model's, which averages over "
            "every request: a server that does not serve in arrival order (an event loop picks ready sockets in "
            "no fixed order) answers some requests quickly while others starve.",
        ]
    return [*lines, ""]


def _burst_section(run: dict[str, Any]) -> list[str]:
    """The burst over time, per stage and server, and how long each server took to recover after the drop."""
    data = run.get("burst")
    if not isinstance(data, dict):
        return []
    title = ["## The burst over time", ""]
    if data.get("error"):
        return [*title, f"The burst could not be measured: {data['error']}", ""]
    servers = data.get("servers", {})
    lines = [
        *title,
        "Each server, fresh, ran these stages one after another, users all arriving (or leaving) within about a "
        "second; figures are over the requests *sent* in each stage, so a stage's queue is charged to it. "
        "Throughput counts requests completed inside the stage.",
        "",
        "| server | users | seconds | n | p50 | p95 | max | req/s | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    recoveries = []
    for name, server in servers.items():
        if "error" in server:
            lines.append(f"| {name} | – | – | – | – | – | – | – | failed: {server['error'].splitlines()[0]} |")
            continue
        for stage in server["stages"]:
            lines.append(
                f"| {name} | {stage['users']} | {stage['end_s'] - stage['start_s']:g} | {stage['requests']} "
                f"| {_fmt_ms(stage['p50_ms'])} | {_fmt_ms(stage['p95_ms'])} | {_fmt_ms(stage['max_ms'])} "
                f"| {_fmt(stage['rps'])} | {stage['failures']} |"
            )
        after = server.get("recovered_after_s")
        first = server["stages"][0]["p50_ms"] if server["stages"] else None
        if len(server["stages"]) >= 2:
            peak = max(server["stages"], key=lambda s: s["users"])
            if after is None:
                gone = "had not recovered by the end of the last stage"
            else:
                gone = f"was back within twice that median {after:g} s after the crowd left"
            recoveries.append(
                f"- **{name}**: median {_fmt_ms(first)} before the crowd and {_fmt_ms(peak['p50_ms'])} while "
                f"{peak['users']} users were on; it {gone}."
            )
        cpu = server.get("client_cpu_pct")
        if is_number(cpu) and cpu > 80:
            recoveries.append(
                f"- **{name}**: the client used {cpu:.0f}% of its core; its latencies are partly the client's."
            )
    lines += ["", *recoveries, "", "![The burst over time](charts/burst.png)", ""]
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


def missing_steps(run: dict[str, Any]) -> list[tuple[str, int, int]]:
    """Planned steps with no record as (server, users, repeat), in the sweep's order, worked out from the
    configuration so it holds even for a killed run; each repeat of a step is a step of its own."""
    done = {repeats.step_key(s) for s in run["steps"]}
    return [
        (server["name"], int(users), repeat)
        for users in run["config"]["load"]["users"]
        for repeat in range(1, repeats.planned_repeats(run) + 1)
        for server in run["config"]["servers"]
        if (server["name"], int(users), repeat) not in done
    ]


def _name(run: dict[str, Any], step: dict[str, Any]) -> str:
    """A step record's name in the report, with its repeat when the run has repeats."""
    return _step_name(run, *repeats.step_key(step))


def _step_name(run: dict[str, Any], server: str, users: int, repeat: int) -> str:
    """How the report names one step: its repeat only when the run has repeats."""
    return f"{server} at {users} users" + (f" (repeat {repeat})" if repeats.planned_repeats(run) > 1 else "")


def _spread_section(run: dict[str, Any]) -> list[str]:
    """Per (server, users), how far the repeats of a step disagreed; nothing for a run without repeats."""
    planned = repeats.planned_repeats(run)
    if planned <= 1:
        return []
    groups = repeats.combine(run)
    flag = f"⚠ >{repeats.FLAG_SPREAD_PCT:g}%"
    head = ["server", "users", "n", "req/s min / median / max", "spread", "p50 min / median / max", "spread",
            "p95 min / median / max", "spread", "flag"]  # fmt: skip
    lines = [
        "### Spread over repeats",
        "",
        f"Each step was measured {planned} times, each time with a fresh server and Locust run. `n` is how many of "
        "them measured it; min / median / max are over those, and the spread is (max − min) / median. The tables "
        "and charts above show the medians.",
        "",
        "| " + " | ".join(head) + " |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]

    def cells(group: repeats.Group | None, metric: str, text: Callable[[Any], str]) -> list[str]:
        span = group.spread.get(metric) if group is not None else None
        if span is None:
            return ["–", "–"]
        pct = span["spread_pct"]
        return [" / ".join(text(span[k]) for k in ("min", "median", "max")), "–" if pct is None else f"{pct:.1f}%"]

    for users in run["config"]["load"]["users"]:
        for server in run["config"]["servers"]:
            group = groups.get((server["name"], int(users)))
            measured = len(group.measured) if group is not None else 0
            row = [server["name"], str(users), str(measured) if measured == planned else f"{measured} of {planned}"]
            row += cells(group, "rps", _fmt) + cells(group, "p50_ms", _fmt_ms) + cells(group, "p95_ms", _fmt_ms)
            row.append(flag if group is not None and group.flagged else "")
            lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        f"**{flag}** marks a step whose throughput or median response time differed by more than "
        f"{repeats.FLAG_SPREAD_PCT:g}% between its repeats: the machine, not just the sample, moved that much, so "
        "at that level a difference between servers smaller than the spread is not established by this run. "
        "p95's spread is shown but not flagged: it rests on the slowest twentieth of a window's requests, whose "
        "own sampling noise often exceeds that much.",
        "",
    ]
    if not any(group.flagged for group in groups.values()):
        lines += [
            f"No step's repeats differed by more than {repeats.FLAG_SPREAD_PCT:g}% in throughput or median "
            "response time.",
            "",
        ]
    return lines


def markdown(run: dict[str, Any]) -> str:
    config = run["config"]
    lines = [f"# Sync vs async: `{config['name']}`", ""]
    if config.get("description"):
        lines += [config["description"].strip(), ""]
    status = run.get("status")
    if status != "complete":
        lines += [f"> **{STATUS_TEXT.get(str(status), f'This run is {status}.')}**"]
        missing = missing_steps(run)
        if missing:
            lines += ["> Missing steps: " + ", ".join(_step_name(run, *step) for step in missing) + "."]
        failed = [s for s in run["steps"] if s.get("status") != "ok"]
        for step in failed:
            first = (step.get("error") or "failed").splitlines()[0]
            lines += [f"> Failed: {_name(run, step)}: {first}"]
        lines += [""]
    lines += ["## Reading", ""]
    for paragraph in reading(run):
        lines += [paragraph, ""]
    lines += ["![Response times](charts/response_times.png)", "", "![Throughput](charts/throughput.png)", ""]
    lines += _timeline_section(run)
    lines += _burst_section(run)
    lines += ["## Results per user level", ""]
    lines += _table(run)
    lines += ["", "† the client used more than 80% of its core in this step (see below).", ""]
    lines += ["### Page and short requests separately", "", *_endpoint_table(run), ""]
    lines += ["### Resources and step accounting", "", *_resource_table(run), ""]
    lines += ["![CPU and memory per level](charts/resources.png)", ""]
    lines += _spread_section(run)
    notes = [
        f"- {_name(run, s)}: {n}"
        for s in run["steps"]
        if _ok(s)
        for n in [*s["figures"].get("notes", []), burst_tail(run, s)]
        if n
    ]
    if notes:
        lines += ["### Notes from the steps", "", *notes, ""]
    lines += _model_section(run)
    lines += ["## What was run", "", *_setup(run), ""]
    lines += ["## How the numbers were measured", "", *METHOD_NOTES, ""]
    return "\n".join(lines)
