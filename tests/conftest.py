"""Shared fixtures: small scenario files and the apps built with short, exact waits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.scenarios import small_scenario
from tests.ways import Get, ways_in


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """Write a small, valid scenario; keyword arguments replace its defaults."""

    def write(**values: object) -> Path:
        path = tmp_path / f"{values.get('name', 'test')}.toml"
        path.write_text(small_scenario(**values), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def ways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Get]]:
    """Flask and FastAPI through their test clients and through real gunicorn and uvicorn, started once."""
    yield from ways_in(tmp_path_factory)
