"""Which hosts a load test may target without an explicit opt-in. No Locust import: tests use this directly."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(url: str) -> bool:
    """Only a literal loopback address or ``localhost`` counts: a name is never resolved to decide."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
