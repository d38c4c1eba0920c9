"""Shared fixtures: small scenario files and the apps built with short, exact waits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.scenarios import small_scenario


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """Write a small, valid scenario; keyword arguments replace its defaults."""

    def write(**values: object) -> Path:
        path = tmp_path / f"{values.get('name', 'test')}.toml"
        path.write_text(small_scenario(**values), encoding="utf-8")
        return path

    return write
