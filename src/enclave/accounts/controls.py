"""Account controls: session limits within each account's policy, MFA coverage of the
accounts that require it."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q

from enclave.accounts.models import IDLE_TIMEOUT_MAX, IDLE_TIMEOUT_MIN
from enclave.core.controls import Outcome, Probe, control, failed, passed

ABSOLUTE_TIMEOUT_MAX_HOURS = 12


@control("AUTH-2", claim="Sessions end after at most 12 h and after the idle limit "
         "(default 30 min; accounts 5 min–12 h)",
         public="Sessions expire after inactivity and after 12 hours")
def check_session_limits(probe: Probe) -> Outcome:
    from enclave.accounts.models import Account

    idle = settings.SESSION_IDLE_TIMEOUT_MINUTES
    absolute = settings.SESSION_ABSOLUTE_TIMEOUT_HOURS
    problems = []
    if not IDLE_TIMEOUT_MIN <= idle <= IDLE_TIMEOUT_MAX:
        problems.append(f"default idle timeout {idle} min outside 5–720")
    if not 0 < absolute <= ABSOLUTE_TIMEOUT_MAX_HOURS:
        problems.append(f"absolute timeout {absolute} h above {ABSOLUTE_TIMEOUT_MAX_HOURS} h")
    if absolute * 3600 < settings.SESSION_COOKIE_AGE:
        problems.append("session cookie outlives the absolute timeout")
    bad = Account.objects.filter(Q(idle_timeout_minutes__lt=IDLE_TIMEOUT_MIN)
                                 | Q(idle_timeout_minutes__gt=IDLE_TIMEOUT_MAX)).count()
    if bad:
        problems.append(f"{bad} account(s) with an idle timeout outside 5–720 min")
    if problems:
        return failed("; ".join(problems))
    overrides = Account.objects.exclude(idle_timeout_minutes=idle).count()
    return passed(f"idle {idle} min, absolute {absolute} h; {overrides} account override(s), "
                  "all within 5–720 min")


@control("AUTH-3", claim="Every member of an account that requires MFA is enrolled; "
         "evidence gives the share of members with MFA",
         public="Two-step verification is available and enforceable per account")
def check_mfa_coverage(probe: Probe) -> Outcome:
    from enclave.accounts.models import Account, Membership
    from enclave.identity.models import Member

    members = Member.objects.filter(is_active=True).count()
    enrolled = Member.objects.filter(is_active=True, totp__confirmed_at__isnull=False).count()
    requiring = Account.objects.filter(require_mfa=True).count()
    missing = (Membership.objects.filter(account__require_mfa=True, member__is_active=True)
               .exclude(member__totp__confirmed_at__isnull=False)
               .values("member").distinct().count())
    share = f"{enrolled}/{members} members use MFA; {requiring} account(s) require it"
    if missing:
        return failed(f"{missing} member(s) of MFA-requiring accounts not enrolled; {share}")
    return passed(share)
