"""Members (the people who log in; distinct from marketing "people") and their credentials.

Every token here (sign-up, password reset, owner set-up) is stored only as its SHA-256
hash; TOTP secrets are encrypted by the keyring (EncryptedTextField); recovery codes are hashed.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower

from enclave.core import clock
from enclave.core.validation import canonical_email
from enclave.keys.fields import EncryptedTextField


class MemberManager(BaseUserManager):
    def with_email(self, email: str):
        """Members whose address is ``email`` in canonical form (the one way identity looks
        a member up by address: the same answer on SQLite and PostgreSQL)."""
        return self.filter(email=canonical_email(email))

    def get_by_natural_key(self, username: str):
        return self.with_email(username).get()


class Member(AbstractBaseUser):
    """A team member. Email is the identity, stored in canonical form
    (``core.validation.canonical_email``), so it is unique under Unicode case folding."""

    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=clock.now)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    objects = MemberManager()

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="member_email_ci_unique")]

    def __str__(self) -> str:
        return f"member:{self.pk}"

    def save(self, *args, **kwargs) -> None:
        # Invariant: the stored address is canonical, whoever creates the row.
        self.email = canonical_email(self.email)
        super().save(*args, **kwargs)

    @property
    def mfa_enabled(self) -> bool:
        """True once a TOTP authenticator is confirmed."""
        device = TotpDevice.objects.filter(member=self).first() if self.pk else None
        return bool(device and device.confirmed_at)


class OwnerSetupToken(models.Model):
    """A one-time link that lets the installer create the first owner. Stored hashed."""

    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True)


class SignupToken(models.Model):
    """A "check your email" sign-up link for an address that has no member yet. Hashed."""

    email = models.EmailField(max_length=254)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True)


class PasswordResetToken(models.Model):
    """A single-use password-reset link (1 hour). Stored hashed."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True)


class ThrottleCounter(models.Model):
    """Login failures per throttle key (embedded mode's store; Redis in production).

    ``key`` is a SHA-256 of the scope and value, so neither emails nor IPs are stored.
    """

    key = models.CharField(max_length=64, unique=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField()
    blocked_until = models.DateTimeField(null=True)


class MemberSession(models.Model):
    """One signed-in browser. Django's session row holds the data; this row holds the
    policy facts (expiry, revocation) and what the Sessions page shows."""

    key_hash = models.CharField(max_length=64, unique=True)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="sessions")
    account = models.ForeignKey("accounts.Account", null=True, on_delete=models.SET_NULL,
                                related_name="+")
    user_agent = models.CharField(max_length=300, blank=True)
    ip = models.GenericIPAddressField(null=True)
    created_at = models.DateTimeField(default=clock.now)
    last_seen_at = models.DateTimeField(default=clock.now)
    # Last time the member proved who they are (password, plus MFA when enrolled).
    authenticated_at = models.DateTimeField(default=clock.now)
    absolute_expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [models.Index(fields=["member", "revoked_at"])]


class TotpDevice(models.Model):
    """A member's TOTP authenticator (RFC 6238). One per member; confirmed once verified."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="totp")
    # The TOTP secret, encrypted by the keyring (purpose "fields"); AAD binds it to this row.
    row_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    secret = EncryptedTextField()
    created_at = models.DateTimeField(default=clock.now)
    confirmed_at = models.DateTimeField(null=True)
    # Highest 30-second time step accepted: each code works once (replay refused).
    last_used_step = models.BigIntegerField(default=0)


class RecoveryCode(models.Model):
    """A single-use MFA recovery code, stored as its SHA-256 hash."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=clock.now)
    used_at = models.DateTimeField(null=True)
