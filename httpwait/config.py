"""The upstream HTTP service's settings as both sides read them: the harness (scenario's ``[upstream]`` table) and
the apps (the environment the harness hands a server), so the names each side uses are one list.

Kept free of any HTTP library so the runner can build a server's environment without loading a client.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simdb.database import ConfigError

ENV_PREFIX = "UPSTREAM_"
# How the upstream fails a call, for every call of a run (``fault`` here, ``--fault`` on the service) or one call
# (the service's ``fault`` query parameter): answer 500, reset the connection (RST), or never answer.
FAULTS = ("none", "500", "reset", "hang")
# The clients a server may call the upstream with, by the face it needs (a thread that waits, an event loop).
# ``-per-request`` builds and closes a client around every call: the antipattern, paying a new connection each time.
BLOCKING_CLIENTS = ("httpx", "httpx-per-request")
ASYNC_CLIENTS = ("httpx", "aiohttp", "httpx-per-request", "aiohttp-per-request")
DEFAULT_CLIENT = "httpx"
CLIENT_TEXT: dict[str, str] = {
    "httpx": "httpx client shared per process",
    "aiohttp": "aiohttp session shared per process",
    "httpx-per-request": "a new httpx client per call",
    "aiohttp-per-request": "a new aiohttp session per call",
}
# The libraries' own pool limits, what a scenario that states none runs with (httpx2 2.16.2 DEFAULT_LIMITS;
# aiohttp 3.14.5 TCPConnector(limit=100, limit_per_host=0)).
HTTPX_DEFAULT_MAX_CONNECTIONS = 100
HTTPX_DEFAULT_MAX_KEEPALIVE = 20
AIOHTTP_DEFAULT_LIMIT = 100
# A call may wait at most this long: below gunicorn's 30 s worker timeout (sync_app/gunicorn.conf.py), which would
# kill a sync worker whose call hangs (a traceback in the log and a lost worker instead of the app's own 504).
MAX_TIMEOUT_S = 25.0
MAX_BODY_BYTES = 10_000_000


@dataclass(frozen=True)
class UpstreamConfig:
    """The upstream service (``[upstream]``, with ``[database] backend = "http"``) and the clients that call it.

    ``capacity``: requests the service serves at once, for all servers' processes together; the rest queue in it
    (0: no limit). ``max_connections`` and ``max_keepalive``: each server process's client pool (None: the library's
    own, httpx 100 and 20, aiohttp 100; aiohttp has no separate keep-alive cap). ``timeout_s``: how long one call
    may take before the app answers 504. ``body_bytes``: each answer is padded to at least this many bytes of
    JSON. ``fault``: every call of the run fails so (tests and demonstrations; "none" in a measured run). ``url``
    is where the harness's own service listens, handed to the servers; it is never a scenario key.
    """

    capacity: int = 0
    max_connections: int | None = None
    max_keepalive: int | None = None
    timeout_s: float = 10.0
    body_bytes: int = 0
    fault: str = "none"
    url: str = ""

    def __post_init__(self) -> None:
        if not _whole(self.capacity) or self.capacity < 0:
            raise ConfigError(f"capacity must be 0 (no limit) or a whole number of requests, got {self.capacity!r}")
        for name in ("max_connections", "max_keepalive"):
            value = getattr(self, name)
            if value is not None and (not _whole(value) or value < 1):
                raise ConfigError(f"{name} must be a whole number >= 1 (leave it out for the library's own)")
        if (
            isinstance(self.timeout_s, bool)
            or not isinstance(self.timeout_s, int | float)
            or not (math.isfinite(self.timeout_s) and 0 < self.timeout_s <= MAX_TIMEOUT_S)
        ):
            raise ConfigError(
                f"timeout_s must be > 0 and at most {MAX_TIMEOUT_S:g} s (gunicorn kills a worker after 30 s), "
                f"got {self.timeout_s!r}"
            )
        if not _whole(self.body_bytes) or not 0 <= self.body_bytes <= MAX_BODY_BYTES:
            raise ConfigError(f"body_bytes must be a whole number from 0 to {MAX_BODY_BYTES}, got {self.body_bytes!r}")
        if self.fault not in FAULTS:
            raise ConfigError(f"fault must be one of {', '.join(repr(f) for f in FAULTS)}, got {self.fault!r}")

    @property
    def httpx_limits(self) -> tuple[int, int]:
        """(max_connections, max_keepalive_connections) an httpx client gets: the settings, else httpx's own."""
        return (
            self.max_connections or HTTPX_DEFAULT_MAX_CONNECTIONS,
            self.max_keepalive or min(HTTPX_DEFAULT_MAX_KEEPALIVE, self.max_connections or HTTPX_DEFAULT_MAX_KEEPALIVE),
        )

    @property
    def aiohttp_limit(self) -> int:
        return self.max_connections or AIOHTTP_DEFAULT_LIMIT

    def pool_text(self, client: str) -> str:
        """The client pool one server process has, in words, for the report."""
        if client.startswith("aiohttp"):
            own = "" if self.max_connections else " (aiohttp's default)"
            return f"at most {self.aiohttp_limit} connections{own}"
        total, idle = self.httpx_limits
        own = "" if self.max_connections or self.max_keepalive else " (httpx's defaults)"
        return f"at most {total} connections, {idle} kept alive{own}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> UpstreamConfig:
        """Read ``UPSTREAM_URL``, ``UPSTREAM_MAX_CONNECTIONS`` and friends, as the runner hands them to a server."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, kind in (
            ("capacity", int),
            ("max_connections", int),
            ("max_keepalive", int),
            ("timeout_s", float),
            ("body_bytes", int),
            ("fault", str),
            ("url", str),
        ):
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is None or raw == "":
                continue
            try:
                values[name] = kind(raw)
            except ValueError:
                raise ConfigError(
                    f"environment variable {ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}"
                ) from None
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """What :meth:`from_env` reads back in a server process (settings left to the library stay unset)."""
        env = {
            f"{ENV_PREFIX}CAPACITY": str(self.capacity),
            f"{ENV_PREFIX}TIMEOUT_S": repr(float(self.timeout_s)),
            f"{ENV_PREFIX}BODY_BYTES": str(self.body_bytes),
            f"{ENV_PREFIX}FAULT": self.fault,
            f"{ENV_PREFIX}URL": self.url,
        }
        for name in ("max_connections", "max_keepalive"):
            value = getattr(self, name)
            if value is not None:
                env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
        return env


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
