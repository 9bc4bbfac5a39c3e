"""Identity state changes. Each runs in one transaction with its audit row."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from enclave.core import audit, clock
from enclave.core.models import AuditEventType
from enclave.identity.models import Member, OwnerSetupToken

SETUP_TOKEN_LIFETIME = dt.timedelta(hours=24)
MAX_EMAIL_LENGTH = 254
MAX_PASSWORD_LENGTH = 1024


class SetupError(Exception):
    """The set-up link cannot be used. ``str()`` is safe to show the user."""


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def do_issue_owner_setup_link(*, actor=None) -> str | None:
    """Issue a one-time owner set-up URL if no member exists yet; else return None.

    Earlier unused links are invalidated, so only the last printed link works.
    """
    with transaction.atomic():
        if Member.objects.exists():
            return None
        OwnerSetupToken.objects.filter(used_at__isnull=True).delete()
        token = secrets.token_urlsafe(32)
        row = OwnerSetupToken.objects.create(
            token_hash=_hash_token(token), expires_at=clock.now() + SETUP_TOKEN_LIFETIME
        )
        audit.record(AuditEventType.OWNER_SETUP_ISSUED, actor=actor, target_type="setup_token",
                     target_id=row.pk)
    return f"{settings.CONFIG.public_url}/app/setup/{token}"


def setup_token_valid(token: str) -> bool:
    if len(token) > 128:
        return False
    row = OwnerSetupToken.objects.filter(token_hash=_hash_token(token)).first()
    return bool(row and row.used_at is None and row.expires_at > clock.now()
                and not Member.objects.exists())


def do_create_first_owner(token: str, email: str, password: str, *, request=None) -> Member:
    """Create the first owner from a set-up link. Raises SetupError or ValidationError."""
    if len(email) > MAX_EMAIL_LENGTH:
        raise ValidationError({"email": "Email addresses are at most 254 characters."})
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError({"password": "Passwords are at most 1024 characters."})
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid email address."}) from None
    with transaction.atomic():
        row = (OwnerSetupToken.objects.select_for_update()
               .filter(token_hash=_hash_token(token[:128])).first())
        if row is None or row.used_at is not None or row.expires_at <= clock.now():
            raise SetupError("This set-up link is invalid, used or expired. "
                             "Restart Enclave to print a new one.")
        if Member.objects.exists():
            raise SetupError("Enclave already has an owner.")
        member = Member(email=email)
        try:
            validate_password(password, member)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
        member.set_password(password)
        member.save()
        row.used_at = clock.now()
        row.save(update_fields=["used_at"])
        audit.record(AuditEventType.OWNER_CREATED, actor=member, request=request,
                     target_type="member", target_id=member.pk)
    return member
