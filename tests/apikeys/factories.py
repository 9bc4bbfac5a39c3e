"""Test helpers: keys made through the real create action (never fixtures with secrets)."""

from __future__ import annotations

from django.db import transaction

from enclave.apikeys.actions import do_create_api_key
from enclave.apikeys.models import ApiKey
from tests.principals import acting


def make_key(account, member, *, scopes, role_ceiling=None, **kw) -> tuple[str, ApiKey]:
    """Create a key for ``member`` in ``account`` via ``do_create_api_key``.

    ``kw``: ``name`` (default "test key"), ``allowed_ips``, ``expires_days``. Returns
    ``(token, key)``. ``scopes`` may be a list or a comma-separated string.
    """
    kw.setdefault("name", "test key")
    with transaction.atomic():
        return do_create_api_key(account, scopes=scopes, role_ceiling=role_ceiling,
                                 actor=acting(member, account), **kw)


def bearer(token: str) -> dict[str, str]:
    """Test-client kwargs sending ``token`` as ``Authorization: Bearer``."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def altered(token: str, index: int = -1) -> str:
    """``token`` with the character at ``index`` replaced by a different one — always a
    different token (``token[:-1] + "x"`` is the same token when it already ends in x)."""
    i = index % len(token)
    return token[:i] + ("a" if token[i] != "a" else "b") + token[i + 1:]
