"""Security controls contributed by API keys (API-1)."""

from __future__ import annotations

import datetime as dt

from enclave.core import clock
from enclave.core.controls import Outcome, Probe, control, failed, passed

MAX_LISTED = 20


def over_age_keys(now=None) -> dict[int, list[str]]:
    """``{account id: [public ids]}`` of live keys older than their account's policy."""
    from enclave.apikeys.models import POLICY_DEFAULT_DAYS, ApiKey, ApiKeyPolicy

    now = now or clock.now()
    policies = dict(ApiKeyPolicy.objects.values_list("account_id", "max_age_days"))
    # Cheap pre-filter: nothing younger than the smallest policy can be over age.
    youngest = min([POLICY_DEFAULT_DAYS, *policies.values()])
    rows = (ApiKey.objects
            .filter(revoked_at__isnull=True, expires_at__gt=now,
                    created_at__lt=now - dt.timedelta(days=youngest))
            .order_by("account_id", "created_at")
            .values_list("account_id", "public_id", "created_at", "grace_until"))
    found: dict[int, list[str]] = {}
    for account_id, public_id, created_at, grace_until in rows:
        if grace_until is not None and grace_until <= now:
            continue  # rolled past its grace: no longer usable
        limit = dt.timedelta(days=policies.get(account_id, POLICY_DEFAULT_DAYS))
        if now - created_at > limit:
            found.setdefault(account_id, []).append(public_id)
    return found


@control(
    "API-1",
    claim="No usable API key is older than its account's key-age policy (default 90 days)",
    public="API access keys are rotated regularly",
)
def check_api_key_age(probe: Probe) -> Outcome:
    found = over_age_keys()
    if not found:
        from enclave.apikeys.models import ApiKey

        live = ApiKey.objects.filter(revoked_at__isnull=True,
                                     expires_at__gt=clock.now()).count()
        return passed(f"{live} usable API key(s), none older than its account's policy")
    ids = [pid for pids in found.values() for pid in pids]
    shown = ", ".join(ids[:MAX_LISTED]) + (f" and {len(ids) - MAX_LISTED} more"
                                           if len(ids) > MAX_LISTED else "")
    return failed(f"{len(ids)} API key(s) in {len(found)} account(s) older than the "
                  f"account's policy: {shown}")
