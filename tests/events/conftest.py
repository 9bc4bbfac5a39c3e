"""Fixtures for ingest tests: the people World and clients holding real API keys."""

from __future__ import annotations

import pytest

from tests.api.conftest import ApiClient
from tests.apikeys.factories import make_key
from tests.people.world import World


@pytest.fixture
def world(db) -> World:
    return World()


def ingest_client(world: World, scopes=("events:write",)) -> ApiClient:
    """A client holding a key with ``scopes`` made by the world's owner."""
    token, _ = make_key(world.account, world.members["owner"], scopes=list(scopes))
    return ApiClient(token)


@pytest.fixture
def ingest(world) -> ApiClient:
    """A client holding a write-only ingest key (scope events:write) made by the owner."""
    return ingest_client(world)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Each test starts with empty in-process rate-limit counters."""
    from enclave.core.ratelimit import rate_limiter

    limiter = rate_limiter()
    if hasattr(limiter, "reset"):
        limiter.reset()
