"""The http backend's faces (httpwait/) and their settings: every client, blocking and awaitable, against the real
upstream service (in a thread of this process on a loopback port, so no process is started): the same rows as the
simulated database, the wait named ``upstream``, and each failure turned into the same 502 or 504."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from aiohttp.test_utils import TestServer

from httpwait import calls
from httpwait.config import ASYNC_CLIENTS, BLOCKING_CLIENTS, UpstreamConfig
from pgdb import choose
from runner.servers import free_port
from simdb import ConfigError, DatabaseConfig, UpstreamFailed
from simdb import workload as wl
from simdb.rows import seeded_items, seeded_user
from upstream.service import make_app

HTTP = DatabaseConfig(backend="http")
PLAN = wl.PagePlan(user_lookup_ms=5, app_work_ms=0, listing_ms=10, rows=3)
TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """The upstream service, unlimited and faultless (a call asks for its own fault), in a thread of its own."""
    ready = threading.Event()
    where: list[str] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        async with TestServer(make_app(0), host="127.0.0.1") as server:
            where.append(str(server.make_url("")).rstrip("/"))
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield where[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def blocking(url: str, driver: str, fault: str = "") -> choose.BlockingFace:
    face = choose.blocking_database(HTTP, driver, UpstreamConfig(url=url, timeout_s=TIMEOUT_S))
    face.open()
    if fault:
        _ask_fault(face, fault)
    return face


def _ask_fault(face: object, fault: str) -> None:
    the_calls = face.calls  # type: ignore[attr-defined]
    the_calls._tail = f"&fault={fault}"


@pytest.mark.parametrize("driver", BLOCKING_CLIENTS)
def test_a_blocking_client_builds_the_page_every_backend_builds(url: str, driver: str) -> None:
    face = blocking(url, driver)
    try:
        body, timing = wl.run_page(face, PLAN, user_id=9)
        short, _ = wl.run_short(face, wl.ShortPlan(5), user_id=9)
    finally:
        face.close()
    items = [{"id": i.id, "title": i.title, "price_cents": i.price_cents} for i in seeded_items(9, 3)]
    assert body == {"user": {"id": 9, "name": seeded_user(9).name}, "items": items}
    assert short == {"ok": True}
    assert timing.header().startswith("upstream;dur=")
    assert timing.db.wait >= 0.015 and timing.db.pool >= 0


@pytest.mark.parametrize("driver", ASYNC_CLIENTS)
def test_an_awaitable_client_builds_the_same_page(url: str, driver: str) -> None:
    async def main() -> tuple[dict[str, object], wl.Timing]:
        face = choose.async_database(HTTP, driver, UpstreamConfig(url=url, timeout_s=TIMEOUT_S))
        await face.open_async()
        try:
            return await wl.run_page_async(face, PLAN, user_id=9)
        finally:
            await face.close_async()

    body, timing = asyncio.run(main())
    with_simulated, _ = wl.run_page(choose.blocking_database(DatabaseConfig(), None), PLAN, user_id=9)
    assert body == with_simulated
    assert timing.header().startswith("upstream;dur=") and timing.db.wait >= 0.015


# Each fault, the status and error both apps answer with, and the longest it may take.
FAULTS = [("500", 502, "upstream_error", 0.4), ("reset", 502, "upstream_error", 0.4),
          ("hang", 504, "upstream_timeout", TIMEOUT_S + 0.4)]  # fmt: skip


@pytest.mark.parametrize("driver", BLOCKING_CLIENTS)
@pytest.mark.parametrize(("fault", "status", "error", "within_s"), FAULTS)
def test_a_blocking_client_turns_each_fault_into_502_or_504(
    url: str, driver: str, fault: str, status: int, error: str, within_s: float
) -> None:
    face = blocking(url, driver, fault)
    started = time.perf_counter()
    try:
        with pytest.raises(UpstreamFailed) as failed:
            face.short(1, 0)
    finally:
        face.close()
    assert (failed.value.status, failed.value.body()["error"]) == (status, error)
    assert time.perf_counter() - started < within_s


@pytest.mark.parametrize("driver", ASYNC_CLIENTS)
@pytest.mark.parametrize(("fault", "status", "error", "within_s"), FAULTS)
def test_an_awaitable_client_turns_each_fault_into_502_or_504(
    url: str, driver: str, fault: str, status: int, error: str, within_s: float
) -> None:
    async def main() -> UpstreamFailed:
        face = choose.async_database(HTTP, driver, UpstreamConfig(url=url, timeout_s=TIMEOUT_S))
        await face.open_async()
        _ask_fault(face, fault)
        try:
            with pytest.raises(UpstreamFailed) as failed:
                await face.short_async(1, 0)
            return failed.value
        finally:
            await face.close_async()

    started = time.perf_counter()
    failure = asyncio.run(main())
    assert (failure.status, failure.body()["error"]) == (status, error)
    assert time.perf_counter() - started < within_s


def test_an_upstream_that_is_not_there_is_a_502() -> None:
    face = choose.blocking_database(HTTP, "httpx", UpstreamConfig(url=f"http://127.0.0.1:{free_port()}"))
    face.open()
    with pytest.raises(UpstreamFailed) as failed:
        face.short(1, 0)
    face.close()
    assert failed.value.status == 502 and "could not be reached" in failed.value.detail


# --- settings, pure ---------------------------------------------------------------------------------------------------


def test_the_settings_cross_into_a_server_through_the_environment() -> None:
    settings = UpstreamConfig(capacity=4, max_connections=8, timeout_s=2.5, body_bytes=100, url="http://127.0.0.1:1")
    assert UpstreamConfig.from_env(settings.to_env()) == settings
    assert UpstreamConfig.from_env(UpstreamConfig().to_env()) == UpstreamConfig()


def test_left_out_limits_are_the_libraries_own() -> None:
    assert UpstreamConfig().httpx_limits == (100, 20)
    assert UpstreamConfig().aiohttp_limit == 100
    assert UpstreamConfig(max_connections=8).httpx_limits == (8, 8)
    assert UpstreamConfig().pool_text("httpx") == "at most 100 connections, 20 kept alive (httpx's defaults)"


@pytest.mark.parametrize(
    ("values", "named"),
    [({"capacity": -1}, "capacity"), ({"max_connections": 0}, "max_connections"), ({"timeout_s": 0}, "timeout_s"),
     ({"timeout_s": 30}, "timeout_s"), ({"fault": "boom"}, "fault"), ({"body_bytes": -5}, "body_bytes")],
)  # fmt: skip
def test_a_bad_setting_is_named(values: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        UpstreamConfig(**values)  # type: ignore[arg-type]


def test_a_server_without_the_upstreams_address_says_where_it_comes_from() -> None:
    with pytest.raises(ConfigError, match="UPSTREAM_URL is empty"):
        choose.blocking_database(HTTP, "httpx", UpstreamConfig())


def test_a_client_the_face_has_not_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="'aiohttp' has no blocking face"):
        choose.blocking_database(HTTP, "aiohttp", UpstreamConfig(url="http://127.0.0.1:1"))


def test_a_call_answered_with_an_error_or_no_json_is_a_502() -> None:
    with pytest.raises(UpstreamFailed, match="answered 500"):
        calls.decoded(500, b"{}")
    with pytest.raises(UpstreamFailed, match="not JSON"):
        calls.decoded(200, b"<html>")
    with pytest.raises(UpstreamFailed, match="listing rows"):
        calls.item_rows({"items": [{"id": 1}]})
