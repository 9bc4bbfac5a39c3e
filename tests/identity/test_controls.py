"""Identity controls AUTH-1..4: each fails on a broken setting and passes when sound."""

from __future__ import annotations

import pytest

from enclave.accounts.models import Account
from enclave.core import controls
from enclave.identity.models import TotpDevice
from tests.identity.helpers import make_member

PROBE = controls.Probe("https://127.0.0.1:1", None, "localhost", None)


def run(control_id):
    return controls.run_one(controls.registry()[control_id], PROBE)


@pytest.mark.django_db
@pytest.mark.real_password_hashing
class TestAuth1PasswordHashing:
    def test_passes_with_argon2id_above_policy(self):
        result = run("AUTH-1")
        assert result.status == "pass"
        assert "argon2id m=65536 KiB t=3 p=1" in result.evidence

    def test_fails_below_the_owasp_minimum(self, settings):
        settings.ARGON2_PARAMETERS = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1}
        assert run("AUTH-1").status == "fail"

    def test_fails_when_the_default_hasher_is_not_argon2(self, settings):
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
        result = run("AUTH-1")
        assert result.status == "fail"
        assert "pbkdf2_sha256" in result.evidence

    def test_evidence_counts_hashes_under_older_parameters(self, settings):
        settings.ARGON2_PARAMETERS = {"time_cost": 2, "memory_cost": 19456, "parallelism": 1}
        make_member()
        settings.ARGON2_PARAMETERS = {"time_cost": 3, "memory_cost": 65536, "parallelism": 1}
        assert "1 stored hash(es) under older parameters" in run("AUTH-1").evidence


@pytest.mark.django_db
class TestAuth2SessionLimits:
    def test_passes_with_the_defaults(self):
        assert run("AUTH-2").status == "pass"

    def test_fails_with_an_absolute_timeout_over_12_hours(self, settings):
        settings.SESSION_ABSOLUTE_TIMEOUT_HOURS = 24
        assert run("AUTH-2").status == "fail"

    def test_fails_with_a_default_idle_timeout_out_of_range(self, settings):
        settings.SESSION_IDLE_TIMEOUT_MINUTES = 1440
        assert run("AUTH-2").status == "fail"

    def test_evidence_counts_account_overrides(self):
        Account.objects.create(name="A", idle_timeout_minutes=60)
        assert "1 account override(s)" in run("AUTH-2").evidence


@pytest.mark.django_db
class TestAuth3MfaCoverage:
    def test_passes_with_the_share_when_no_account_requires_mfa(self):
        make_member()
        result = run("AUTH-3")
        assert result.status == "pass"
        assert "0/1 members use MFA; 0 account(s) require it" in result.evidence

    def test_fails_when_a_member_of_an_mfa_account_is_not_enrolled(self):
        make_member()
        Account.objects.update(require_mfa=True)
        assert run("AUTH-3").status == "fail"

    def test_passes_when_every_member_of_an_mfa_account_is_enrolled(self):
        member = make_member()
        Account.objects.update(require_mfa=True)
        TotpDevice.objects.create(member=member, secret="JBSWY3DPEHPK3PXP",
                                  confirmed_at=member.created_at)
        result = run("AUTH-3")
        assert result.status == "pass"
        assert "1/1 members use MFA; 1 account(s) require it" in result.evidence


@pytest.mark.django_db
class TestAuth4Throttling:
    def test_passes_with_named_limits_and_a_reachable_store(self):
        result = run("AUTH-4")
        assert result.status == "pass"
        assert ("mfa_per_member 5/15m, per_ip 50/15m, per_member 5/15m; counters in "
                "database table") in result.evidence

    def test_fails_without_a_per_ip_limit(self, settings):
        settings.LOGIN_LIMITS = {"per_member": "5/15m", "mfa_per_member": "5/15m"}
        assert run("AUTH-4").status == "fail"

    def test_fails_without_a_second_factor_limit(self, settings):
        settings.LOGIN_LIMITS = {"per_member": "5/15m", "per_ip": "50/15m"}
        result = run("AUTH-4")
        assert (result.status, result.evidence) == ("fail",
                                                    "no login limit named mfa_per_member")

    def test_fails_with_a_malformed_limit(self, settings):
        settings.LOGIN_LIMITS = {"per_member": "lots", "per_ip": "50/15m"}
        assert run("AUTH-4").status == "fail"

    def test_fails_when_the_store_is_unreachable(self, settings):
        settings.THROTTLE_STORE = "tests.identity.test_controls.unreachable_store"
        result = run("AUTH-4")
        assert result.status == "fail"
        assert "throttle store unreachable" in result.evidence


def unreachable_store():
    from enclave.identity.services import RedisThrottleStore

    return RedisThrottleStore("redis://127.0.0.1:1/0")
