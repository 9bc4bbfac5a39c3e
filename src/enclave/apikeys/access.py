"""Tenant-scoped, permission-checked reads of API keys.

Another account's key looks exactly like a missing one (Http404).
"""

from __future__ import annotations

from django.http import Http404

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize
from enclave.apikeys import tokens
from enclave.apikeys.models import ApiKey


def keys_of(ctx: Principal):
    """The account's keys, newest first (needs ``API_KEYS_READ``)."""
    authorize(ctx, Permission.API_KEYS_READ)
    return (ApiKey.objects.filter(account_id=ctx.account_id)
            .select_related("created_by", "predecessor").order_by("-created_at", "-pk"))


def access_key(ctx, public_id) -> ApiKey:
    """One key of the member's account by public id; Http404 if missing or another's."""
    if not isinstance(public_id, str) or not tokens.PUBLIC_ID_RE.match(public_id):
        raise Http404("No such API key.")
    key = keys_of(ctx).filter(public_id=public_id).first()
    if key is None:
        raise Http404("No such API key.")
    return key
