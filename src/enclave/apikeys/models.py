"""API keys and the per-account key-age policy. Tables only; state changes are in actions.

A key row never holds the token: only its public id and a keyed HMAC of the whole token
(``secret_mac`` under keyring purpose ``tokens`` version ``mac_version``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from enclave.core import clock

POLICY_MIN_DAYS, POLICY_MAX_DAYS, POLICY_DEFAULT_DAYS = 1, 365, 90

SERVER, BROWSER = "server", "browser"
KINDS = (SERVER, BROWSER)
# What a browser key's identify may do to people (the account's identify rule):
# ``link`` — link the visitor's anonymous id to the userId's person, never set a field;
# ``fill_new`` — also set traits as fields of a person that call creates (never of an
# existing person).
IDENTIFY_LINK, IDENTIFY_FILL_NEW = "link", "fill_new"
IDENTIFY_MODES = (IDENTIFY_LINK, IDENTIFY_FILL_NEW)


class ApiKey(models.Model):
    """One API key of one account, created by a member (its permissions bound the key)."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="api_keys")
    public_id = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=100)
    secret_mac = models.BinaryField(max_length=32)
    mac_version = models.PositiveIntegerField()
    scopes = models.JSONField(default=list)
    role_ceiling = models.CharField(max_length=16)
    allowed_ips = models.JSONField(default=list)  # CIDR strings; empty = any address
    # ``browser``: a website's tracking key (public by design; ``apikeys.browser``).
    kind = models.CharField(max_length=8, default=SERVER)
    allowed_origins = models.JSONField(default=list)  # browser keys: exact origins
    require_consent = models.BooleanField(default=False)
    identify_mode = models.CharField(max_length=8, default=IDENTIFY_LINK)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True,
                                   on_delete=models.SET_NULL, related_name="+")
    # The creator's membership when the key was made. Removing the member deletes it and
    # the key stops working (re-inviting them later does not revive old keys).
    creator_membership = models.ForeignKey("accounts.Membership", null=True,
                                           on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True)
    last_used_ip = models.GenericIPAddressField(null=True)
    revoked_at = models.DateTimeField(null=True)
    exposed_at = models.DateTimeField(null=True)
    rolled_at = models.DateTimeField(null=True)
    grace_until = models.DateTimeField(null=True)  # a rolled key works until then
    predecessor = models.OneToOneField("self", null=True, on_delete=models.SET_NULL,
                                       related_name="successor")

    class Meta:
        indexes = [models.Index(fields=["account", "created_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(expires_at__gt=models.F("created_at")),
                                   name="apikey_expires_after_creation"),
            models.CheckConstraint(
                condition=models.Q(rolled_at__isnull=True) | models.Q(grace_until__isnull=False),
                name="apikey_rolled_has_grace"),
            models.CheckConstraint(condition=models.Q(kind__in=KINDS), name="apikey_kind"),
            models.CheckConstraint(condition=models.Q(identify_mode__in=IDENTIFY_MODES),
                                   name="apikey_identify_mode"),
        ]

    def __str__(self) -> str:
        return f"api-key:{self.public_id}"

    def state(self, now=None) -> str:
        """``active``, ``grace`` (rolled, still valid), ``rolled``, ``expired``,
        ``revoked`` or ``exposed`` — the first that applies, in that order of severity."""
        now = now or clock.now()
        if self.exposed_at is not None:
            return "exposed"
        if self.revoked_at is not None:
            return "revoked"
        if self.grace_until is not None and now >= self.grace_until:
            return "rolled"
        if now >= self.expires_at:
            return "expired"
        return "grace" if self.grace_until is not None else "active"

    def age_days(self, now=None) -> int:
        return ((now or clock.now()) - self.created_at).days


class ApiKeyPolicy(models.Model):
    """An account's key-age policy: keys older than ``max_age_days`` are flagged (API-1)."""

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE,
                                   related_name="api_key_policy")
    max_age_days = models.PositiveIntegerField(
        default=POLICY_DEFAULT_DAYS,
        validators=[MinValueValidator(POLICY_MIN_DAYS), MaxValueValidator(POLICY_MAX_DAYS)])
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_age_days__gte=POLICY_MIN_DAYS,
                                   max_age_days__lte=POLICY_MAX_DAYS),
                name="apikeypolicy_max_age_in_range"),
        ]
