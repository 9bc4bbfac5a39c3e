"""Flows that create a member and their account together: the first owner (set-up link)
and sign-up. Identity creates the member, accounts creates the account — in one
transaction, so a failure leaves neither."""

from __future__ import annotations

from django.db import transaction

from enclave.access.principal import for_member
from enclave.accounts.actions import clean_account_name, do_create_account
from enclave.core import audit
from enclave.core.models import AuditEventType
from enclave.identity import actions as identity_actions
from enclave.identity.models import Member


def do_create_first_owner(token: str, email: str, password: str, *, request=None) -> Member:
    """Create the first owner from a set-up link, with a workspace named after their
    email domain (renamable). Raises SetupError or ValidationError."""
    with transaction.atomic():
        member = identity_actions.do_create_member_from_setup_link(
            token, email, password, request=request)
        do_create_account(member.email.rsplit("@", 1)[1], owner=member,
                          actor=for_member(member), request=request)
    return member


def do_complete_signup(token: str, account_name: str, password: str, *,
                       request=None) -> Member:
    """Create the member, their account and owner membership from a sign-up link.
    Raises TokenError or ValidationError; nothing is written unless all succeeds."""
    account_name = clean_account_name(account_name)
    with transaction.atomic():
        member = identity_actions.do_create_member_from_signup_link(
            token, password, account_name=account_name, request=request)
        account = do_create_account(account_name, owner=member, actor=for_member(member),
                                    request=request)
        audit.record(AuditEventType.SIGNUP_COMPLETED, actor=member, account_id=account.pk,
                     request=request, target_type="member", target_id=member.pk)
    return member
