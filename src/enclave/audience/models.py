"""Segments: dynamic ones (a rule tree, membership kept current) and static lists.

``Segment.rules`` holds the rule tree as sent (validated by ``audience.rules``; never
SQL). ``SegmentMember`` is the current membership of both kinds; for a dynamic segment it
is maintained by ``audience.membership`` (incrementally for people who changed or sent
events, in full for rules that depend on the passing of time), and every entry and exit
is a ``SegmentTransition`` row with its time — what flows will trigger on.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from enclave.core import clock

DYNAMIC, STATIC = "dynamic", "static"
KINDS = (DYNAMIC, STATIC)
ENTERED, EXITED = "entered", "exited"


class Segment(models.Model):
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=[(k, k) for k in KINDS])
    rules = models.JSONField(null=True, blank=True)
    # Whether the rules depend on "now" (relative dates, event windows): such segments are
    # also re-evaluated in full by the periodic job, since time alone changes them.
    time_dependent = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)
    # Changes to people and events up to this time are reflected in the membership.
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="segment_name_unique"),
            models.CheckConstraint(condition=models.Q(kind__in=KINDS),
                                   name="segment_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(kind=STATIC, rules__isnull=True)
                | models.Q(kind=DYNAMIC, rules__isnull=False),
                name="segment_rules_iff_dynamic"),
        ]

    def __str__(self) -> str:
        return f"segment:{self.pk}"


class SegmentMember(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+")
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "person"],
                                               name="segmentmember_unique")]
        indexes = [models.Index(fields=["person"], name="segmentmember_person")]


class SegmentTransition(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="+")
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=[(k, k) for k in (ENTERED, EXITED)])
    at = models.DateTimeField(default=clock.now)

    class Meta:
        indexes = [models.Index(fields=["segment", "at"], name="segmenttransition_at"),
                   models.Index(fields=["person"], name="segmenttransition_person")]
        constraints = [models.CheckConstraint(condition=models.Q(kind__in=(ENTERED, EXITED)),
                                              name="segmenttransition_kind_valid")]


# --- subscriptions and consent ---

SUBSCRIBED, UNSUBSCRIBED, PENDING = "subscribed", "unsubscribed", "pending"
STATUSES = (SUBSCRIBED, UNSUBSCRIBED, PENDING)
# How a subscription changed: the proof of consent says how it was given or withdrawn.
METHODS = ("form", "import", "api", "app", "confirmation", "preference_centre",
           "unsubscribe_link", "unsubscribe_mail", "complaint")
SUPPRESSION_REASONS = ("manual", "complaint", "bounce", "erasure")


class Topic(models.Model):
    """Something people subscribe to (a newsletter, product updates). ``consent_text`` is
    what a subscriber agrees to; changing it starts a new ``consent_version``, and every
    consent record names the version it was given under."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+")
    key = models.SlugField(max_length=40)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    double_opt_in = models.BooleanField(default=True)
    consent_text = models.CharField(max_length=1000)
    consent_version = models.PositiveIntegerField(default=1)
    # Names the topic in its public subscribe form's URL (not a secret).
    public_id = models.CharField(max_length=24, unique=True)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "key"],
                                               name="topic_key_unique")]

    def __str__(self) -> str:
        return f"topic:{self.pk}"


class Subscription(models.Model):
    """A person's current state for a topic (no row: never subscribed)."""

    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=12, choices=[(s, s) for s in STATUSES])
    changed_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["person", "topic"], name="subscription_unique"),
            models.CheckConstraint(condition=models.Q(status__in=STATUSES),
                                   name="subscription_status_valid"),
        ]
        indexes = [models.Index(fields=["topic", "status"], name="subscription_topic_status")]


class ConsentRecord(models.Model):
    """One change of consent, kept as history (only erasure removes rows): when, how,
    from which address and under which consent text version. ``topic`` null: all topics
    (an "unsubscribe from everything")."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+")
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+")
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="+")
    status = models.CharField(max_length=12, choices=[(s, s) for s in STATUSES])
    method = models.CharField(max_length=20, choices=[(m, m) for m in METHODS])
    consent_version = models.PositiveIntegerField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=clock.now)

    class Meta:
        indexes = [models.Index(fields=["person", "at"], name="consentrecord_person_at")]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=STATUSES),
                                   name="consentrecord_status_valid"),
            models.CheckConstraint(condition=models.Q(method__in=METHODS),
                                   name="consentrecord_method_valid"),
        ]


class Suppression(models.Model):
    """An address that must never be sent to, whatever a segment says. Kept as a keyed
    MAC of the normalised address (keyring purpose "tokens"; the version is kept so the
    keyring refuses to retire a key a suppression still needs), so erasing a person can
    add their address here without keeping it."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+")
    mac_version = models.PositiveIntegerField()
    email_mac = models.CharField(max_length=64)
    reason = models.CharField(max_length=10, choices=[(r, r) for r in SUPPRESSION_REASONS])
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "mac_version", "email_mac"],
                                    name="suppression_unique"),
            models.CheckConstraint(condition=models.Q(reason__in=SUPPRESSION_REASONS),
                                   name="suppression_reason_valid"),
        ]
