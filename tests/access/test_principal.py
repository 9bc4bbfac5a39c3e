"""System actions (jobs, the operator's CLI) take ``actor=None``; nobody else passes."""

from __future__ import annotations

import pytest

from enclave.access.principal import NotAuthorized, authorize_system
from enclave.people import actions
from tests.apikeys.factories import make_key
from tests.people.world import World


@pytest.fixture
def world(db) -> World:
    return World()


@pytest.mark.django_db
class TestAuthorizeSystem:
    def test_the_system_itself_passes(self):
        authorize_system(None)

    @pytest.mark.parametrize("role", ["owner", "admin"])
    def test_a_members_principal_is_refused(self, world, role):
        with pytest.raises(NotAuthorized, match="Only the system"):
            authorize_system(world.actor(role))

    def test_an_api_keys_principal_is_refused(self, world):
        from enclave.apikeys.auth import authenticate_token

        token, _ = make_key(world.account, world.members["owner"], scopes=["people:write"])
        with pytest.raises(NotAuthorized, match="Only the system"):
            authorize_system(authenticate_token(token, None))

    def test_a_system_job_refuses_a_member_as_its_actor(self, world):
        with pytest.raises(NotAuthorized, match="Only the system"):
            actions.do_purge_expired_imports(actor=world.actor("owner"))
        assert actions.do_purge_expired_imports() == 0
