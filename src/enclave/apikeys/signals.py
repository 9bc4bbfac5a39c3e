"""Receivers: a key that arrived over plain HTTP is marked exposed and revoked."""

from __future__ import annotations


def on_credential_exposed(sender, *, request, found, **kwargs) -> None:
    """``core.actions.credential_exposed``: runs inside the exposure's transaction."""
    from enclave.apikeys.actions import do_mark_api_keys_exposed

    do_mark_api_keys_exposed([value for _kind, value in found], request=request)


def count_key_hashes(purpose: str, version: int) -> int:
    """Usable keys whose hash is under ``tokens`` v``version``: retiring that version would
    kill them (``keys.actions.do_retire_key_version`` refuses while any remain). Each key
    moves to the primary version on its next recorded use."""
    if purpose != "tokens":
        return 0
    from django.db.models import Q

    from enclave.apikeys.models import ApiKey
    from enclave.core import clock

    now = clock.now()
    return (ApiKey.objects.filter(mac_version=version, revoked_at__isnull=True,
                                  expires_at__gt=now)
            .filter(Q(grace_until__isnull=True) | Q(grace_until__gt=now)).count())
