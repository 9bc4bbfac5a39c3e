"""Tenant-scoped, permission-checked reads of API keys.

Another account's key looks exactly like a missing one (Http404).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from enclave.apikeys import tokens
from enclave.apikeys.models import ApiKey
from enclave.apikeys.scopes import ceiling_permissions


def keys_of(ctx):
    """The account's keys, newest first (needs ``api_keys.manage``)."""
    if not ctx.can("api_keys.manage"):
        raise PermissionDenied("Your role does not include api_keys.manage.")
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


def require_key_manager(principal) -> None:
    """API callers of the ``api_keys:*`` endpoints: the key's creator must still hold
    ``api_keys.manage`` and the key's ceiling must include it (owner/admin)."""
    if "api_keys.manage" not in (principal.creator_perms
                                 & ceiling_permissions(principal.role_ceiling)):
        raise PermissionDenied("Managing API keys through the API needs a key whose creator "
                               "holds api_keys.manage and whose role ceiling includes it.")
