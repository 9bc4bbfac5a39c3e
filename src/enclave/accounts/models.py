"""Accounts (tenants), memberships and invitations — the minimal slice identity needs.

A membership carries a built-in role name (``ROLES``) or a custom ``Role``; what each
grants is the permission table in ``enclave.access.permissions``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from enclave.access.permissions import BUILT_IN_ROLES
from enclave.core import clock
from enclave.identity.sessions import IDLE_TIMEOUT_DEFAULT, IDLE_TIMEOUT_MAX, IDLE_TIMEOUT_MIN

ROLES = BUILT_IN_ROLES


class Account(models.Model):
    """A tenant (a company's workspace)."""

    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=clock.now)
    # Sessions in this account end after this many minutes without a request (5 min–12 h).
    idle_timeout_minutes = models.PositiveIntegerField(
        default=IDLE_TIMEOUT_DEFAULT,
        validators=[MinValueValidator(IDLE_TIMEOUT_MIN), MaxValueValidator(IDLE_TIMEOUT_MAX)],
    )
    require_mfa = models.BooleanField(default=False)
    # Where the sender is, at the end of every broadcast (messaging.footer); up to five
    # lines. A business address, not personal data.
    # A database default too: an account row written outside the ORM (an operator's SQL,
    # the live tests) needs none.
    postal_address = models.CharField(max_length=300, blank=True, default="", db_default="")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(idle_timeout_minutes__gte=IDLE_TIMEOUT_MIN,
                                   idle_timeout_minutes__lte=IDLE_TIMEOUT_MAX),
                name="account_idle_timeout_in_policy",
            )
        ]

    def __str__(self) -> str:
        return f"account:{self.pk}"


class Membership(models.Model):
    """A member's role in one account. One per member and account."""

    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                               related_name="memberships")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=[(r, r) for r in ROLES])
    # A custom role replaces the built-in role's permissions (access.permissions); the
    # ``role`` column then holds "viewer" so older role-name checks grant nothing extra.
    custom_role = models.ForeignKey("Role", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="memberships")
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "account"], name="membership_unique"),
            models.CheckConstraint(condition=models.Q(role__in=ROLES),
                                   name="membership_role_valid"),
        ]


class Role(models.Model):
    """A custom role of one account: a name and permissions from
    ``permissions.CUSTOM_ROLE_PERMISSIONS`` (checked by the action that writes it)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="roles")
    name = models.CharField(max_length=40)
    permissions = models.JSONField(default=list)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="role_name_unique"),
        ]


class Invitation(models.Model):
    """An invitation to join an account with a role. The token is stored only as SHA-256."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=[(r, r) for r in ROLES])
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                    on_delete=models.SET_NULL, related_name="+")
