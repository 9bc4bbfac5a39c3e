"""Generated: role × /app/api-keys/ endpoint → allowed or 403, from the permission table."""

from __future__ import annotations

import pytest
from django.urls import get_resolver

from enclave.accounts.permissions import ROLE_PERMISSIONS
from enclave.apikeys import urls
from tests.apikeys.factories import make_key
from tests.people.world import ROLES

# (url name, method, permission it needs, whether its URL takes a key's public id)
ENDPOINTS = (
    ("api-keys-list", "GET", "api_keys.manage", False),
    ("api-keys-create", "GET", "api_keys.manage", False),
    ("api-keys-create", "POST", "api_keys.manage", False),
    ("api-keys-roll", "POST", "api_keys.manage", True),
    ("api-keys-revoke", "POST", "api_keys.manage", True),
    ("api-keys-policy", "POST", "account.manage", False),
)
BODIES = {"api-keys-create": {"name": "k", "scopes": ["events:write"], "role_ceiling": "viewer"},
          "api-keys-policy": {"max_age_days": "60"}, "api-keys-roll": {"grace_hours": "1"}}
CASES = [(e, role) for e in ENDPOINTS for role in ROLES]


def test_every_route_has_an_entry():
    names = {p.name for p in urls.urlpatterns}
    assert names == {e[0] for e in ENDPOINTS}
    assert get_resolver().resolve("/app/api-keys/").url_name == "api-keys-list"


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "role"), CASES,
                         ids=[f"{e[0]}-{e[1]}-{r}" for e, r in CASES])
def test_role_gets_the_endpoint_iff_it_has_the_permission(world, endpoint, role):
    name, method, permission, takes_key = endpoint
    url = {"api-keys-list": "/app/api-keys/", "api-keys-create": "/app/api-keys/new/",
           "api-keys-policy": "/app/api-keys/policy/"}.get(name)
    if takes_key:
        _, key = make_key(world.account, world.members["owner"], scopes=["events:write"],
                          role_ceiling="viewer")
        url = f"/app/api-keys/{key.public_id}/{name.rsplit('-', 1)[1]}/"
    client = world.client(role)
    response = client.get(url) if method == "GET" else client.post(url, BODIES.get(name, {}))
    allowed = permission in ROLE_PERMISSIONS[role]
    if allowed:
        assert response.status_code in (200, 201, 302), response.status_code
    else:
        assert response.status_code == 403
