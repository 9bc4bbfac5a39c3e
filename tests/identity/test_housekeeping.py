"""Identity housekeeping: ended sessions, spent tokens and idle throttle rows are purged."""

import datetime as dt

import pytest

from enclave.core import clock
from enclave.identity.actions import do_issue_owner_setup_link, do_purge_expired_identity_records
from enclave.identity.models import MemberSession, OwnerSetupToken, ThrottleCounter
from tests.identity.helpers import make_member


def session(member, **fields):
    values = {"key_hash": f"{len(fields)}-{sorted(fields)}-{clock.now().timestamp()}",
              "member": member, "absolute_expires_at": clock.now() + dt.timedelta(hours=12)}
    values.update(fields)
    return MemberSession.objects.create(**values)


@pytest.mark.django_db
class TestPurge:
    def test_live_session_is_kept(self):
        live = session(make_member())
        do_purge_expired_identity_records()
        assert MemberSession.objects.filter(pk=live.pk).exists()

    def test_session_revoked_over_30_days_ago_is_removed(self):
        old = session(make_member(), revoked_at=clock.now())
        with clock.travel(dt.timedelta(days=31)):
            do_purge_expired_identity_records()
        assert not MemberSession.objects.filter(pk=old.pk).exists()

    def test_recently_revoked_session_stays_visible(self):
        recent = session(make_member(), revoked_at=clock.now())
        with clock.travel(dt.timedelta(days=29)):
            do_purge_expired_identity_records()
        assert MemberSession.objects.filter(pk=recent.pk).exists()

    def test_expired_setup_token_is_removed_after_a_day(self):
        do_issue_owner_setup_link()
        with clock.travel(dt.timedelta(days=3)):
            counts = do_purge_expired_identity_records()
        assert counts["setup_tokens"] == 1
        assert not OwnerSetupToken.objects.exists()

    def test_active_throttle_block_is_kept(self):
        ThrottleCounter.objects.create(key="k" * 64, failures=9, last_failure_at=clock.now(),
                                       blocked_until=clock.now() + dt.timedelta(days=3))
        with clock.travel(dt.timedelta(days=2)):
            do_purge_expired_identity_records()
        assert ThrottleCounter.objects.count() == 1
