"""Identity controls: password hashing and login throttling (session limits and MFA
coverage are per account: ``accounts.controls``)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher, get_hasher

from enclave.core.controls import Outcome, Probe, control, failed, passed
from enclave.identity.passwords import meets_policy


def _fmt(params: dict) -> str:
    return f"m={params['memory_cost']} KiB t={params['time_cost']} p={params['parallelism']}"


@control("AUTH-1", claim="New password hashes are argon2id with parameters at or above "
         "OWASP's minimum; older hashes are upgraded at login",
         public="Passwords are stored only as argon2id hashes")
def check_password_hashing(probe: Probe) -> Outcome:
    hasher = get_hasher("default")
    if not isinstance(hasher, Argon2PasswordHasher):
        return failed(f"default password hasher is {hasher.algorithm}, not argon2id")
    params = {"time_cost": hasher.time_cost, "memory_cost": hasher.memory_cost,
              "parallelism": hasher.parallelism}
    minimum = settings.ARGON2_POLICY_MINIMUM
    if not meets_policy(params, minimum):
        return failed(f"argon2id {_fmt(params)} is below the policy {_fmt(minimum)}")
    from enclave.identity.models import Member

    prefix = hasher.encode("probe", hasher.salt()).rsplit("$", 2)[0]
    stale = Member.objects.exclude(password__startswith=prefix + "$").count()
    return passed(f"argon2id {_fmt(params)} (policy ≥ {_fmt(minimum)}); {stale} stored "
                  "hash(es) under older parameters, upgraded at next login")


@control("AUTH-4", claim="Password and second-factor attempts are throttled per member "
         "and per IP with expiring back-off; the counter store answers",
         public="Password and MFA code guessing is throttled")
def check_login_throttling(probe: Probe) -> Outcome:
    from enclave.identity import throttle
    from enclave.identity.services import throttle_store

    try:
        limits = throttle.limits()
    except ValueError as exc:
        return failed(str(exc))
    missing = set(throttle.REQUIRED_LIMITS) - set(limits)
    if missing:
        return failed(f"no login limit named {', '.join(sorted(missing))}")
    try:
        where = throttle_store().ping()
    except Exception as exc:  # noqa: BLE001 — an unreachable store is the finding.
        return failed(f"throttle store unreachable: {type(exc).__name__}: {exc}")
    described = ", ".join(f"{k} {settings.LOGIN_LIMITS[k]}" for k in sorted(limits))
    return passed(f"{described}; counters in {where}")
