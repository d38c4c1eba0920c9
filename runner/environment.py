"""What machine and software a run measured, recorded with the run so a result can be judged on its own."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from typing import Any

import psutil

from runner.config import ROOT

PACKAGES = (
    "flask",
    "werkzeug",
    "gunicorn",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "anyio",
    "locust",
    "gevent",
    "geventhttpclient",
    "matplotlib",
    "psutil",
    # The PostgreSQL drivers and the ORM (backend = "postgres"); the server's version is in metadata["database"].
    "psycopg",
    "psycopg-pool",
    "asyncpg",
    "sqlalchemy",
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def describe(cpu_note: str) -> dict[str, Any]:
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": affinity,
        "cpu_pinning": cpu_note,
        "memory_gb": _memory_gb(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(),
        "git": git_commit(),
        "command": sys.argv,
    }


def _memory_gb() -> float:
    return round(float(psutil.virtual_memory().total) / 2**30, 1)
