"""Fixtures for core tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def local_limiter(settings):
    """Empty in-process rate counters for every test: the plain-HTTP tests all come from
    127.0.0.1 and would otherwise spend the ``exposure.*`` limits for each other."""
    from enclave.core import ratelimit as services

    settings.API_RATE_LIMITER = "enclave.core.ratelimit.LocalRateLimiter"
    limiter = services.rate_limiter()
    limiter.reset()
    return limiter
