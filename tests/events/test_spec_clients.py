"""The tracking spec's real clients — ``segment-analytics-python``,
``rudder-sdk-python`` and the Node SDK ``@segment/analytics-node`` (tests/node, installed by
``make node-deps``) — pointed at a running ``enclave serve`` (HTTPS with its own CA,
gunicorn workers): every call arrives as an event of the key's account, anonymous calls
are attached once the visitor is identified, and a refused key is reported once, never
retried."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
from pathlib import Path

import pytest
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from tests.live_accounts import add_owner_account, cli_key

CLIENTS = {"segment": SegmentClient, "rudder": RudderClient}
NODE_DIR = Path(__file__).resolve().parents[1] / "node"


@pytest.fixture(scope="module")
def live(live_with_accounts):
    return live_with_accounts


@pytest.fixture
def key(live, name) -> tuple[int, str]:
    """An account of this test's own (the tests run in any order on one deployment)
    and an events:write key of it, for client ``name``."""
    email = f"{name}-{secrets.token_hex(4)}@events.example"
    account = add_owner_account(live, email, f"{name} SDK")
    return account, cli_key(live, account, email, "events:write")


@pytest.fixture(autouse=True)
def _trust_the_live_ca(live, monkeypatch):
    # Both clients post with requests, which reads the CA bundle from the environment.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(live.ca_file))


def client(name: str, live, token: str, errors: list, **options):
    return CLIENTS[name](write_key=token, host=f"{live.https_url}/api/ingest",
                         on_error=lambda exc, batch: errors.append(exc), gzip=True,
                         **options)


def rows(live, account_id: int, query: str, *params):
    db = sqlite3.connect(f"file:{live.var_dir / 'data' / 'enclave.sqlite3'}?mode=ro",
                         uri=True, timeout=30)
    try:
        return db.execute(query, (account_id, *params)).fetchall()
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CLIENTS))
class TestRealClients:
    def test_every_call_arrives_as_an_event(self, name, live, key):
        account, token = key
        errors: list = []
        sdk = client(name, live, token, errors)
        sdk.identify(user_id="u-1", traits={"email": f"ada@{name}.example",
                                            "firstName": "Ada", "plan": "pro"})
        sdk.track(user_id="u-1", event="Signed up", properties={"trial_days": 14})
        sdk.page(user_id="u-1", category="Docs", name="Pricing",
                 properties={"path": "/pricing"})
        sdk.screen(user_id="u-1", name="Settings")
        sdk.group(user_id="u-1", group_id="acme", traits={"industry": "rockets"})
        sdk.alias(previous_id="old-visitor", user_id="u-1")
        sdk.flush()
        sdk.join()
        assert errors == []
        stored = rows(live, account, "SELECT type, name, properties FROM events_event "
                                     "WHERE account_id = ? ORDER BY id")
        assert [(t, n) for t, n, _ in stored] == [
            ("identify", ""), ("track", "Signed up"), ("page", "Pricing"),
            ("screen", "Settings"), ("group", ""), ("alias", "")]
        assert json.loads(stored[0][2]) == {"plan": "pro"}
        assert json.loads(stored[1][2]) == {"trial_days": 14}
        person = rows(live, account, "SELECT email, first_name, external_id FROM "
                                     "people_person WHERE account_id = ?")
        assert person == [(f"ada@{name}.example", "Ada", "u-1")]

    def test_anonymous_visit_is_attached_once_identified(self, name, live, key):
        account, token = key
        errors: list = []
        sdk = client(name, live, token, errors)
        sdk.page(anonymous_id="visitor-9", name="Home")
        sdk.flush()
        sdk.identify(anonymous_id="visitor-9", user_id="u-9")
        sdk.flush()
        sdk.join()
        assert errors == []
        attached = rows(live, account, "SELECT p.external_id FROM events_event e JOIN "
                                       "people_person p ON p.id = e.person_id WHERE "
                                       "e.account_id = ? AND e.name = 'Home'")
        assert attached == [("u-9",)]

    def test_refused_key_is_reported_once_and_not_retried(self, name, live, key):
        _, token = key
        errors: list = []
        before = refused(live)
        sdk = client(name, live, token[:-8] + "AAAAAAAA", errors, max_retries=3)
        sdk.track(user_id="u-1", event="Never stored")
        sdk.flush()
        sdk.join()
        assert [getattr(e, "status", None) for e in errors] == [401]
        assert refused(live) == before + 1  # one request: a 4xx is not retried


def refused(live) -> int:
    """Requests to the batch call the server answered 401 (its access log)."""
    count = 0
    for line in live.log().splitlines():
        if '"path": "/api/ingest/v1/batch"' in line and '"status": 401' in line:
            count += 1
    return count


@pytest.mark.slow
class TestNodeClient:
    def test_every_call_of_the_node_sdk_arrives_as_an_event(self, live):
        email = f"node-sdk-{secrets.token_hex(4)}@events.example"
        account = add_owner_account(live, email, "node SDK")
        token = cli_key(live, account, email, "events:write")
        result = subprocess.run(
            ["node", "send.mjs", live.https_url, token, "u-node"], cwd=NODE_DIR,
            env={**os.environ, "NODE_EXTRA_CA_CERTS": str(live.ca_file)},
            capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        stored = rows(live, account, "SELECT type, name FROM events_event "
                                     "WHERE account_id = ? ORDER BY id")
        assert stored == [("identify", ""), ("track", "Signed up"), ("page", "Pricing"),
                          ("screen", "Settings"), ("group", ""), ("alias", "")]
        person = rows(live, account, "SELECT email, first_name, external_id FROM "
                                     "people_person WHERE account_id = ?")
        assert person == [("u-node@node.example", "Ada", "u-node")]
