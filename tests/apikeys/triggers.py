"""One trigger per API-key audit event type, for tests/core/test_audit.py."""

from __future__ import annotations

from enclave.core.models import AuditEventType
from tests.principals import acting


def _owner_and_key(scopes=("people:read",)):
    from enclave.accounts.models import Account
    from tests.apikeys.factories import make_key
    from tests.people.world import new_member

    account = Account.objects.create(name="Trigger")
    owner = new_member("trigger-owner@example.com", account, "owner")
    token, key = make_key(account, owner, scopes=list(scopes))
    return account, owner, token, key


def trigger_created():
    _owner_and_key()


def trigger_rolled():
    from enclave.apikeys.actions import do_roll_api_key

    _, owner, _, key = _owner_and_key()
    do_roll_api_key(key, actor=acting(owner, key.account_id))


def trigger_revoked():
    from enclave.apikeys.actions import do_revoke_api_key

    _, owner, _, key = _owner_and_key()
    do_revoke_api_key(key, actor=acting(owner, key.account_id))


def trigger_exposed(http_client):
    _, _, token, _ = _owner_and_key()
    http_client.get("/api/v1/health", HTTP_HOST="localhost",
                    HTTP_AUTHORIZATION=f"Bearer {token}")


def trigger_policy_changed():
    from enclave.apikeys.actions import do_set_api_key_policy

    account, owner, _, _ = _owner_and_key()
    do_set_api_key_policy(account, max_age_days=30, actor=acting(owner, account))


TRIGGERS = {
    AuditEventType.API_KEY_CREATED: lambda f: trigger_created(),
    AuditEventType.API_KEY_ROLLED: lambda f: trigger_rolled(),
    AuditEventType.API_KEY_REVOKED: lambda f: trigger_revoked(),
    AuditEventType.API_KEY_EXPOSED: lambda f: trigger_exposed(f["http_client"]),
    AuditEventType.API_KEY_POLICY_CHANGED: lambda f: trigger_policy_changed(),
}
