"""The upstream service itself (upstream/service.py), in this process on a loopback port: its answers, its
capacity and its faults, as the faces and the harness rely on them. No process is started."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from simdb.rows import seeded_items, seeded_user
from upstream.service import make_app, padded

Check = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


def served(check: Check, capacity: int = 0, fault: str = "none") -> None:
    """Run ``check`` against the service on a free loopback port, then close both."""

    async def main() -> None:
        async with TestServer(make_app(capacity, fault), host="127.0.0.1") as server, aiohttp.ClientSession() as client:
            await check(client, str(server.make_url("")).rstrip("/"))

    asyncio.run(main())


def test_the_answers_are_the_seeded_rows_after_the_delay_asked() -> None:
    async def check(client: aiohttp.ClientSession, url: str) -> None:
        started = time.perf_counter()
        async with client.get(f"{url}/user/42?ms=50") as response:
            assert response.status == 200
            assert await response.json() == seeded_user(42)._asdict()
        assert time.perf_counter() - started >= 0.05
        async with client.get(f"{url}/items/7?rows=3&ms=0") as response:
            assert (await response.json())["items"] == [item._asdict() for item in seeded_items(7, 3)]
        async with client.get(f"{url}/short/7") as response:
            assert await response.json() == {"ok": True}

    served(check)


def test_a_body_is_padded_to_the_size_asked_and_stays_json() -> None:
    assert padded({"ok": True}, 0) == b'{"ok":true}'
    body = padded({"ok": True}, 500)
    assert len(body) == 500 and json.loads(body)["ok"] is True


@pytest.mark.parametrize(
    ("path", "named"),
    [("/user/1?ms=-1", "ms"), ("/user/1?ms=nan", "ms"), ("/items/1?rows=x", "rows"), ("/user/x", "id"),
     ("/short/1?fault=boom", "fault"), ("/short/1?bytes=99999999999", "bytes")],
)  # fmt: skip
def test_a_bad_call_is_refused_with_the_parameter_named(path: str, named: str) -> None:
    async def check(client: aiohttp.ClientSession, url: str) -> None:
        async with client.get(url + path) as response:
            assert response.status == 400
            assert named in (await response.json())["detail"]

    served(check)


def test_beyond_its_capacity_calls_queue_and_health_says_so() -> None:
    """Capacity 2, six calls of 200 ms at once: three rounds, never more than two in service."""

    async def check(client: aiohttp.ClientSession, url: str) -> None:
        async def call() -> None:
            async with client.get(f"{url}/short/1?ms=200") as response:
                assert response.status == 200

        started = time.perf_counter()
        calls = asyncio.gather(*(call() for _ in range(6)))
        await asyncio.sleep(0.1)
        async with client.get(f"{url}/health") as response:
            health = await response.json()
        await calls
        assert (health["in_service"], health["queued"], health["capacity"]) == (2, 4, 2)
        assert 0.6 <= time.perf_counter() - started < 1.0
        async with client.get(f"{url}/health") as response:
            after = await response.json()
        assert (after["in_service"], after["queued"], after["served"]) == (0, 0, 6)

    served(check, capacity=2)


def test_each_fault_per_call_and_per_run() -> None:
    async def check(client: aiohttp.ClientSession, url: str) -> None:
        async with client.get(f"{url}/short/1?fault=500") as response:
            assert response.status == 500
        with pytest.raises(aiohttp.ClientError):  # reset: the connection is gone, no answer
            async with client.get(f"{url}/short/1?fault=reset") as response:
                await response.read()
        with pytest.raises(TimeoutError):
            async with client.get(f"{url}/short/1?fault=hang", timeout=aiohttp.ClientTimeout(total=0.3)) as response:
                await response.read()
        async with client.get(f"{url}/short/1") as response:
            assert response.status == 200
        await asyncio.sleep(0.1)  # the hung call's handler is cancelled once its caller has gone: its slot is free
        async with client.get(f"{url}/health") as response:
            assert (await response.json())["in_service"] == 0

    served(check, capacity=1)

    async def every_call(client: aiohttp.ClientSession, url: str) -> None:
        async with client.get(f"{url}/user/1") as response:
            assert response.status == 500
        async with client.get(f"{url}/health") as response:  # health never fails: the harness asks it
            assert response.status == 200

    served(every_call, fault="500")
