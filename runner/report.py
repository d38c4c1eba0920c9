"""``report.md``: what was run, the numbers per level, and a plain-language reading of them.

The reading is written from the measured figures by rules stated here, never from expectations: if async does
not come out ahead, the text says so, and a step that the client rather than the server limited is named.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from runner.config import ServerConfig

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
    return {(s["server"], int(s["users"])): s for s in run["steps"]}


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
        return ["This run has no sync/async pair to compare; see the table."]
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
        why = _why(run, sync, s_low, s_high, a_high, high)
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
            + ", ".join(f"{s['server']} at {s['users']} users: {s['figures']['latency']['failures']}" for s in failing)
            + ". Failed requests are counted apart; the response times above are of successful requests only."
        )
    limited = [f"{s['server']} at {s['users']} users" for s in run["steps"] if s.get("saturated") == "client"]
    if limited:
        out.append(f"**Client-limited steps:** {', '.join(limited)}: {CLIENT_LIMIT_NOTE}.")
    else:
        out.append("**No step was limited by the client**: Locust stayed below 80% of its core throughout.")
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
        workers = int(step.get("workers") or 1)
        if service:
            text += (
                f". {workers} worker(s) holding each request about {service:.0f} ms need about "
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


def _why(
    run: dict[str, Any],
    sync: dict[str, Any],
    s_low: dict[str, Any],
    s_high: dict[str, Any],
    a_high: dict[str, Any],
    high: int,
) -> str:
    """Explain the high level with the simplest queueing bound, claiming only what the numbers support.

    W sync workers, each holding a request for S, finish at most W / S requests/s; N users thinking Z ask for
    N / (Z + S). Each sentence below is said only when the measurements agree with it.
    """
    load = run["config"]["load"]
    workers = int(sync["workers"])
    service_ms = mix_service_ms(run, s_low)
    if service_ms is None:
        return ""
    service = service_ms / 1000
    think = (load["think_time_s"][0] + load["think_time_s"][1]) / 2
    ceiling = workers / service
    offered = high / (think + service)
    knee = workers * (think + service) / service
    measured = float(s_high["figures"]["rps"])
    text = (
        f"**Why:** a sync worker serves one request at a time and holds it for all of it, waits included: about "
        f"{service_ms:.0f} ms on average at the lowest level (page and short means weighted by the mix). "
        f"{workers} worker(s) can finish at most {workers} / {service:.3f} s ≈ {ceiling:.0f} requests/s, and "
        f"{high} users thinking {think:g} s on average ask for about {offered:.0f}/s."
    )
    if offered > ceiling and measured >= 0.75 * ceiling:
        text += (
            f" The sync server did reach that ceiling ({measured:.0f}/s measured): past about {knee:.0f} users "
            f"requests queue for a worker in the listen backlog, and a closed loop of users waits longer instead "
            f"of asking faster."
        )
    elif offered > ceiling:
        text += (
            f" The sync server stayed well below that ceiling ({measured:.0f}/s measured), so something other "
            f"than its worker count limited it; see its CPU below."
        )
    else:
        text += f" That is within its ceiling: at this load the sync server has enough workers ({measured:.0f}/s)."
    s_cpu, a_cpu = s_high.get("server_cpu_pct"), a_high.get("server_cpu_pct")
    if is_number(s_cpu) and s_cpu < 60 and offered > ceiling:
        text += f" Its CPU was at {s_cpu:.0f}% of a core: it was mostly waiting, not working."
    if is_number(a_cpu):
        if a_cpu >= 70:
            text += (
                f" The async server, which holds no worker during a wait, used {a_cpu:.0f}% of its core: CPU is "
                f"its nearest limit, and its latency grows as it approaches it."
            )
        else:
            text += f" The async server used {a_cpu:.0f}% of its core: it had CPU to spare."
    return text


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
]


STATUS_TEXT = {
    "running": "This run did not finish: it was stopped before it could record its end (killed, or still running).",
    "interrupted": "This run was interrupted; the steps measured before that are shown.",
    "incomplete": "This run is incomplete: some steps failed.",
    "failed": "This run failed before all its steps were measured.",
}


def missing_steps(run: dict[str, Any]) -> list[tuple[str, int]]:
    """Planned steps with no record, worked out from the configuration so it holds even for a killed run."""
    done = {(s["server"], int(s["users"])) for s in run["steps"]}
    return [
        (server["name"], int(users))
        for users in run["config"]["load"]["users"]
        for server in run["config"]["servers"]
        if (server["name"], int(users)) not in done
    ]


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
            lines += ["> Missing steps: " + ", ".join(f"{server} at {users} users" for server, users in missing) + "."]
        failed = [s for s in run["steps"] if s.get("status") != "ok"]
        for step in failed:
            first = (step.get("error") or "failed").splitlines()[0]
            lines += [f"> Failed: {step['server']} at {step['users']} users: {first}"]
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
    notes = [
        f"- {s['server']} at {s['users']} users: {n}"
        for s in run["steps"]
        if _ok(s)
        for n in [*s["figures"].get("notes", []), burst_tail(run, s)]
        if n
    ]
    if notes:
        lines += ["### Notes from the steps", "", *notes, ""]
    lines += ["## What was run", "", *_setup(run), ""]
    lines += ["## How the numbers were measured", "", *METHOD_NOTES, ""]
    return "\n".join(lines)
