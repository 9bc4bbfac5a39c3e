"""A real key never reaches the log store: not from requests, not from careless logging."""

from __future__ import annotations

import logging

import pytest

from tests.apikeys.factories import altered, bearer, make_key
from tests.logs.conftest import store, stored_text  # noqa: F401 — the store fixture


@pytest.mark.django_db
def test_planted_key_never_reaches_the_log_store(world, client, http_client, store):  # noqa: F811
    token, _key = make_key(world.account, world.members["owner"], scopes=["api_keys:read"])
    client.get("/api/v1/api-keys", **bearer(token))
    client.get(f"/api/v1/api-keys?api_key={token}", **bearer(altered(token)))
    http_client.get("/api/v1/api-keys", HTTP_HOST="localhost", **bearer(token))
    logging.getLogger("enclave.tests").warning("integration configured with %s", token)
    text = stored_text(store)
    # Positive controls: the careless line and the requests are in the store (redacted).
    assert "integration configured with [REDACTED:" in text
    assert "/api/v1/api-keys" in text
    assert token not in text
    assert token.rsplit("_", 1)[1] not in text
    assert "REDACTED" in text
