"""Idle expiry follows the strictest limit of every account the member belongs to, so
switching to (or sitting in) a laxer account cannot revive an idle session."""

from __future__ import annotations

import datetime as dt

import pytest

from enclave.accounts.models import Account, Membership
from enclave.core import clock
from tests.people.world import World, signed_in


def minutes(n: int) -> dt.timedelta:
    return dt.timedelta(minutes=n)


@pytest.fixture
def two_accounts(db):
    """The world's user, also a member of a lax account (12 h) — and A is strict (5 min)."""
    world = World()
    Account.objects.filter(pk=world.account.pk).update(idle_timeout_minutes=5)
    lax = Account.objects.create(name="Lax", idle_timeout_minutes=720)
    Membership.objects.create(member=world.members["user"], account=lax, role="viewer")
    return world, lax


@pytest.mark.django_db
class TestStrictestIdleLimit:
    def test_session_in_the_lax_account_ends_at_the_strict_accounts_limit(self, two_accounts):
        world, lax = two_accounts
        client = signed_in(world.members["user"])
        assert client.post("/app/account/switch/", {"account": lax.pk}).status_code == 302
        with clock.travel(minutes(6)):
            response = client.get("/app/")
        assert response.status_code == 302
        assert response["Location"].startswith("/app/login/?ended=1")

    def test_switching_accounts_cannot_revive_an_idle_session(self, two_accounts):
        world, lax = two_accounts
        client = signed_in(world.members["user"])
        with clock.travel(minutes(6)):
            response = client.post("/app/account/switch/", {"account": lax.pk})
        assert response["Location"].startswith("/app/login/?ended=1")

    def test_a_session_within_the_strict_limit_continues(self, two_accounts):
        world, lax = two_accounts
        client = signed_in(world.members["user"])
        client.post("/app/account/switch/", {"account": lax.pk})
        with clock.travel(minutes(4)):
            assert client.get("/app/").status_code == 200

    def test_leaving_the_strict_account_lets_the_laxer_limit_apply(self, two_accounts):
        world, lax = two_accounts
        client = signed_in(world.members["user"])
        client.post("/app/account/switch/", {"account": lax.pk})
        Membership.objects.filter(member=world.members["user"], account=world.account).delete()
        with clock.travel(minutes(60)):
            assert client.get("/app/").status_code == 200
