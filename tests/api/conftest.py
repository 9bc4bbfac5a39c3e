"""Fixtures for API tests: the people World (a member per role, another tenant) and
clients that send an API key made through the real create action."""

from __future__ import annotations

import json

import pytest

from enclave.access.permissions import ROLE_PERMISSIONS
from enclave.access.scopes import SCOPES
from tests.apikeys.factories import make_key
from tests.conftest import HttpsClient
from tests.people.world import World


class ApiClient(HttpsClient):
    """An HTTPS test client that sends ``Authorization: Bearer <token>`` and JSON bodies."""

    def __init__(self, token: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.token = token

    def generic(self, method, path, data="", content_type="application/json", **extra):
        if self.token is not None:
            extra.setdefault("HTTP_AUTHORIZATION", f"Bearer {self.token}")
        if not isinstance(data, str | bytes):
            data = json.dumps(data)
        return super().generic(method, path, data, content_type, **extra)

    def post(self, path, data=None, content_type="application/json", **extra):
        return self.generic("POST", path, "" if data is None else data, content_type, **extra)

    def patch(self, path, data=None, content_type="application/json", **extra):
        return self.generic("PATCH", path, "" if data is None else data, content_type,
                            **extra)

    def delete(self, path, data=None, content_type="application/json", **extra):
        return self.generic("DELETE", path, "" if data is None else data, content_type,
                            **extra)


def scopes_within(role: str) -> list[str]:
    """Every scope a key with ``role`` as its ceiling may carry."""
    return [s for s, perms in SCOPES.items() if perms <= ROLE_PERMISSIONS[role]]


def key_client(world: World, *, ceiling: str = "owner", scopes=None, **kwargs) -> ApiClient:
    """A client with a key made by ``world``'s owner with role ceiling ``ceiling`` and
    ``scopes`` (default: every scope that fits under the ceiling)."""
    token, _ = make_key(world.account, world.members["owner"],
                        scopes=list(scopes or scopes_within(ceiling)), role_ceiling=ceiling)
    return ApiClient(token, **kwargs)


@pytest.fixture
def world(db) -> World:
    return World()


@pytest.fixture
def api(world) -> ApiClient:
    """The owner's key with every scope."""
    return key_client(world)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Every test starts with empty in-process rate-limit counters (the suite sends far
    more requests per minute from 127.0.0.1 than the per-IP limit allows)."""
    from enclave.core.ratelimit import rate_limiter

    limiter = rate_limiter()
    if hasattr(limiter, "reset"):
        limiter.reset()
