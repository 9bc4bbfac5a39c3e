"""API-1: usable keys older than their account's policy fail the control."""

from __future__ import annotations

import datetime as dt

import pytest

from enclave.apikeys.actions import do_revoke_api_key, do_set_api_key_policy
from enclave.core import clock
from enclave.core.controls import FAIL, PASS, Probe, registry, run_one
from tests.apikeys.factories import make_key

PROBE = Probe("https://127.0.0.1:8443", None, "localhost", None)


def api1():
    return run_one(registry()["API-1"], PROBE)


@pytest.mark.django_db
class TestKeyAgeControl:
    def test_passes_with_young_keys(self, world):
        make_key(world.account, world.members["owner"], scopes=["people:read"])
        result = api1()
        assert result.status == PASS
        assert "1 usable" in result.evidence

    def test_fails_naming_the_old_key_by_public_id_only(self, world):
        token, key = make_key(world.account, world.members["owner"], scopes=["people:read"],
                              expires_days=365)
        with clock.travel(dt.timedelta(days=91)):
            result = api1()
        assert result.status == FAIL
        assert key.public_id in result.evidence
        assert token not in result.evidence

    def test_account_policy_decides_the_age(self, world):
        _, _key = make_key(world.account, world.members["owner"], scopes=["people:read"])
        do_set_api_key_policy(world.account, max_age_days=30, actor=world.actor("owner"))
        with clock.travel(dt.timedelta(days=31)):
            assert api1().status == FAIL
        with clock.travel(dt.timedelta(days=29)):
            assert api1().status == PASS

    def test_revoked_old_keys_do_not_fail_the_control(self, world):
        _, key = make_key(world.account, world.members["owner"], scopes=["people:read"],
                          expires_days=365)
        do_revoke_api_key(key, actor=world.actor("owner"))
        with clock.travel(dt.timedelta(days=100)):
            assert api1().status == PASS

    def test_expired_keys_do_not_fail_the_control(self, world):
        make_key(world.account, world.members["owner"], scopes=["people:read"],
                 expires_days=30)
        with clock.travel(dt.timedelta(days=100)):
            assert api1().status == PASS
