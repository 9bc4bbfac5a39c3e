"""Fixtures for API-key tests: the people test world and a fresh local rate limiter."""

from __future__ import annotations

import pytest

from tests.people.world import World


@pytest.fixture
def world(db) -> World:
    return World()


@pytest.fixture(autouse=True)
def local_limiter(settings):
    """Every test starts with empty in-process rate counters."""
    from enclave.core import ratelimit as services

    settings.API_RATE_LIMITER = "enclave.core.ratelimit.LocalRateLimiter"
    limiter = services.rate_limiter()
    limiter.reset()
    return limiter
