"""How the FastAPI app's process is set up, as the runner hands it over: through the environment, read once.

Kept free of FastAPI imports so the runner can build the environment (:meth:`AppSettings.to_env`) from the same
names the app reads (:meth:`AppSettings.from_env`) without loading a web framework.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from simdb import ConfigError

EndpointStyle = Literal["async", "def", "blocking"]
ENDPOINT_STYLES: tuple[EndpointStyle, ...] = ("async", "def", "blocking")
# AnyIO's own default thread limit, which FastAPI's `def` endpoints run under unless told otherwise.
ANYIO_THREAD_LIMIT = 40

ENV_ENDPOINTS = "APP_ENDPOINTS"
ENV_THREAD_LIMIT = "APP_THREAD_LIMIT"
ENV_DIE_WITH_PARENT = "APP_DIE_WITH_PARENT"


@dataclass(frozen=True)
class AppSettings:
    """Which endpoints the app registers, and how its process is tied to the harness.

    ``endpoints``: ``async`` awaits the database's awaitable face; ``def`` runs the blocking face in AnyIO's thread
    pool, at most ``thread_limit`` at once; ``blocking`` calls the blocking face inside ``async def``, the common
    mistake that stalls the event loop for every wait. ``die_with_parent``: the process asks the kernel to kill it
    when its parent dies, which uvicorn's worker processes need (see :func:`die_with_parent`).
    """

    endpoints: EndpointStyle = "async"
    thread_limit: int = ANYIO_THREAD_LIMIT
    die_with_parent: bool = False

    def __post_init__(self) -> None:
        if self.endpoints not in ENDPOINT_STYLES:
            raise ConfigError(f"endpoints must be one of {', '.join(ENDPOINT_STYLES)}, got {self.endpoints!r}")
        if isinstance(self.thread_limit, bool) or not isinstance(self.thread_limit, int) or self.thread_limit < 1:
            raise ConfigError(f"thread_limit must be a whole number > 0, got {self.thread_limit!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppSettings:
        """Read ``APP_ENDPOINTS``, ``APP_THREAD_LIMIT`` and ``APP_DIE_WITH_PARENT``; unset means the default."""
        env = os.environ if environ is None else environ
        endpoints = env.get(ENV_ENDPOINTS) or cls.endpoints
        if endpoints not in ENDPOINT_STYLES:
            raise ConfigError(
                f"environment variable {ENV_ENDPOINTS}={endpoints!r} is not one of {', '.join(ENDPOINT_STYLES)}"
            )
        raw_limit = env.get(ENV_THREAD_LIMIT) or str(cls.thread_limit)
        try:
            thread_limit = int(raw_limit)
        except ValueError:
            raise ConfigError(f"environment variable {ENV_THREAD_LIMIT}={raw_limit!r} is not a whole number") from None
        return cls(
            endpoints=endpoints,
            thread_limit=thread_limit,
            die_with_parent=env.get(ENV_DIE_WITH_PARENT, "") == "1",
        )

    def to_env(self) -> dict[str, str]:
        """The environment that makes :meth:`from_env` rebuild these settings in the server's processes."""
        return {
            ENV_ENDPOINTS: self.endpoints,
            ENV_THREAD_LIMIT: str(self.thread_limit),
            ENV_DIE_WITH_PARENT: "1" if self.die_with_parent else "0",
        }


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux ``PR_SET_PDEATHSIG``; elsewhere a no-op).

    The harness arms the process it starts, but the kernel clears the setting in children, and uvicorn with several
    workers spawns them from a supervisor: if the harness is killed outright the supervisor dies with it and,
    without this, its workers live on holding the port. If the parent is already gone by the time this runs, the
    signal would never come, so the process ends itself at once.
    """
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    parent = multiprocessing.parent_process()  # set in a process spawned by multiprocessing, as uvicorn's workers are
    if parent is not None and parent.pid is not None and os.getppid() != parent.pid:
        os.kill(os.getpid(), signal.SIGKILL)
