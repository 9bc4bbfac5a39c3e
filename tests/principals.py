"""Principals for tests: a member acting in an account, as the web app builds them."""

from __future__ import annotations

from enclave.access.principal import Principal
from enclave.accounts.access import principal_for


def acting(member, account) -> Principal:
    """``member``'s principal in ``account`` (an Account or its id)."""
    return principal_for(member, getattr(account, "pk", account))
