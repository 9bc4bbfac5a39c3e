"""Email templates and sender domains.

Templates: ``source`` is what the member wrote (MJML or HTML with Liquid);
``compiled`` is that source turned into HTML with its CSS inlined — done once when the
template is saved (``messaging.rendering.compile_template``), so sending only runs the
Liquid personalisation per recipient."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from enclave.core import clock
from enclave.keys.fields import EncryptedBinaryField, EncryptedTextField

MJML, HTML = "mjml", "html"
KINDS = (MJML, HTML)


class EmailTemplate(models.Model):
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=[(k, k) for k in KINDS])
    subject = models.CharField(max_length=255)
    source = models.TextField()
    compiled = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "name"],
                                    name="emailtemplate_name_unique"),
            models.CheckConstraint(condition=models.Q(kind__in=KINDS),
                                   name="emailtemplate_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"template:{self.pk}"


# Sender domains: UNVERIFIED until the DKIM record of its signing key is found in DNS;
# UNKNOWN when DNS could not be asked (no network) — a state, not a failure.
UNVERIFIED, VERIFIED, UNKNOWN = "unverified", "verified", "unknown"
DOMAIN_STATES = (UNVERIFIED, VERIFIED, UNKNOWN)
# A DKIM key: PENDING (made, its record not yet seen), ACTIVE (signs; one per domain),
# RETIRED (replaced; its private key deleted — sealed copies in older backups expire with
# them).
PENDING, ACTIVE, RETIRED = "pending", "active", "retired"
KEY_STATES = (PENDING, ACTIVE, RETIRED)


class SenderDomain(models.Model):
    """A domain the account sends from. Mail is signed with its active DKIM key."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+")
    domain = models.CharField(max_length=253)
    state = models.CharField(max_length=12, default=UNVERIFIED,
                             choices=[(s, s) for s in DOMAIN_STATES])
    # One line on the last check: which records were found or missing, or why DNS could
    # not be asked. Never a secret.
    check_detail = models.CharField(max_length=500, blank=True, default="")
    checked_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    # Throttle: at most this many messages a second from this domain, across every
    # worker (None: as fast as the pipeline goes). ``next_slot_at`` is when the next one
    # may be handed over (the pipeline's shared pacing).
    max_per_second = models.PositiveIntegerField(null=True, blank=True)
    next_slot_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "domain"],
                                    name="senderdomain_unique"),
            models.CheckConstraint(condition=models.Q(state__in=DOMAIN_STATES),
                                   name="senderdomain_state_valid"),
        ]

    def __str__(self) -> str:
        return f"sender-domain:{self.pk}"


class DkimKey(models.Model):
    """An RSA key pair for one selector of a domain; the private key is sealed by the
    keyring (bound to this row) and deleted when the key is retired."""

    domain = models.ForeignKey(SenderDomain, on_delete=models.CASCADE, related_name="+")
    selector = models.CharField(max_length=63)
    state = models.CharField(max_length=8, default=PENDING,
                             choices=[(s, s) for s in KEY_STATES])
    public_key = models.TextField()  # base64 DER (SubjectPublicKeyInfo), as in the record
    private_key = EncryptedTextField(null=True, blank=True)  # PEM; None once retired
    row_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=clock.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["domain", "selector"], name="dkimkey_unique"),
            models.UniqueConstraint(fields=["domain"], condition=models.Q(state="active"),
                                    name="dkimkey_one_active"),
            models.UniqueConstraint(fields=["domain"], condition=models.Q(state="pending"),
                                    name="dkimkey_one_pending"),
            models.CheckConstraint(condition=models.Q(state__in=KEY_STATES),
                                   name="dkimkey_state_valid"),
        ]

    def __str__(self) -> str:
        return f"dkim-key:{self.pk}"


# Broadcasts: a DRAFT is edited; SCHEDULED waits for its ``send_at`` (then it is queued,
# or back to DRAFT with a ``problem`` when it cannot be); QUEUED has its recipients
# snapshotted into the outbox (the send pipeline takes it from there); PAUSED keeps its
# outbox but nothing is handed over until it is resumed; SENT once every outbox row is
# final; CANCELLED stops what is still queued.
DRAFT, SCHEDULED, QUEUED, PAUSED = "draft", "scheduled", "queued", "paused"
SENT, CANCELLED = "sent", "cancelled"
BROADCAST_STATES = (DRAFT, SCHEDULED, QUEUED, PAUSED, SENT, CANCELLED)
# One outbox row per broadcast × person: QUEUED → SENDING (claimed by a worker, with a
# lease) → SENT, DEFERRED (retried at next_attempt_at), FAILED (given up, or a bounce) or
# SKIPPED (no longer eligible when its turn came: unsubscribed, suppressed, archived).
OUTBOX_QUEUED, OUTBOX_SENDING, OUTBOX_SENT = "queued", "sending", "sent"
OUTBOX_DEFERRED, OUTBOX_FAILED, OUTBOX_SKIPPED = "deferred", "failed", "skipped"
OUTBOX_CANCELLED = "cancelled"
OUTBOX_STATES = (OUTBOX_QUEUED, OUTBOX_SENDING, OUTBOX_SENT, OUTBOX_DEFERRED, OUTBOX_FAILED,
                 OUTBOX_SKIPPED, OUTBOX_CANCELLED)
OUTBOX_FINAL = (OUTBOX_SENT, OUTBOX_FAILED, OUTBOX_SKIPPED, OUTBOX_CANCELLED)


class Broadcast(models.Model):
    """An email to the subscribers of some topics (consent is per topic), optionally only
    those in some segments; sent from ``from_local``@``sender.domain``."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+")
    name = models.CharField(max_length=100)
    template = models.ForeignKey(EmailTemplate, on_delete=models.PROTECT, related_name="+")
    sender = models.ForeignKey(SenderDomain, on_delete=models.PROTECT, related_name="+")
    from_local = models.CharField(max_length=64)
    from_name = models.CharField(max_length=100, blank=True, default="")
    # Ids of the account's topics (at least one) and segments (none: every subscriber).
    topics = models.JSONField(default=list)
    segments = models.JSONField(default=list)
    state = models.CharField(max_length=10, default=DRAFT,
                             choices=[(s, s) for s in BROADCAST_STATES])
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    send_at = models.DateTimeField(null=True, blank=True)  # when SCHEDULED
    # Sent at each recipient's local time (``do_schedule_broadcast(local_time=True)``):
    # ``local_at`` is the moment asked for and ``local_offset`` the UTC offset (minutes) it
    # was given in. Its wall-clock time is when each recipient with a time zone gets it
    # (their own clock); people without one get it at ``local_at``. ``send_at`` is then the
    # snapshot's moment: the first at which that wall-clock time comes anywhere (UTC+14).
    local_at = models.DateTimeField(null=True, blank=True)
    local_offset = models.SmallIntegerField(null=True, blank=True)
    # Why a scheduled broadcast was not sent at its time (it went back to DRAFT).
    problem = models.CharField(max_length=200, blank=True, default="")
    queued_at = models.DateTimeField(null=True, blank=True)
    recipients = models.PositiveIntegerField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Open and click tracking (off unless asked for; ``messaging.tracking``): the links it
    # rewrites are the template's literal https links, kept here when it is queued.
    track_opens = models.BooleanField(default=False, db_default=False)
    track_clicks = models.BooleanField(default=False, db_default=False)
    tracked_links = models.JSONField(default=list)
    # The keyring version (purpose ``tokens``) its tracking tokens are signed with, fixed
    # when it is queued: a later rotation leaves sent links working (and retirement waits).
    tracking_key_version = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "send_at"], name="broadcast_due")]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="broadcast_name_unique"),
            models.CheckConstraint(condition=models.Q(state__in=BROADCAST_STATES),
                                   name="broadcast_state_valid"),
        ]

    def __str__(self) -> str:
        return f"broadcast:{self.pk}"


class Sendable(models.Model):
    """What the send pipeline keeps about each message it sends: its state, the worker's
    lease, retries and the last outcome (``messaging.pipeline``)."""

    state = models.CharField(max_length=10, default=OUTBOX_QUEUED,
                             choices=[(s, s) for s in OUTBOX_STATES])
    created_at = models.DateTimeField(default=clock.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)  # the worker's lease
    # Which claim holds the lease (a random id, not a secret): a worker sends and records
    # only rows it still holds.
    lease_id = models.CharField(max_length=32, blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The Message-ID's unique part, fixed at the first attempt: a retry is the same mail.
    message_id = models.CharField(max_length=64, blank=True, default="")
    # The last outcome: a reply code and enhanced status, or why it was skipped — never
    # an address or a server's text.
    detail = models.CharField(max_length=40, blank=True, default="")

    class Meta:
        abstract = True


class OutboxMessage(Sendable):
    """One recipient of a broadcast. Holds no address or body: both are taken from the
    person and the template when the message is sent, so erasing the person (which
    deletes these rows) leaves nothing behind."""

    # No database foreign keys here: a constraint's check locks each referenced row
    # (FOR KEY SHARE), which for a million-recipient snapshot rewrote a million people
    # rows at commit and took longer than the insert itself. Integrity holds without:
    # deleting people or broadcasts deletes their rows — the ORM's cascade, the erasure
    # registry, and a trigger per table in the database (migration 0012; on PostgreSQL
    # a person's deletion first waits for the account's running snapshots,
    # ``enclave.people.locks``). A row whose person is gone anyway is skipped by the
    # pipeline. No index of their own either: ``outboxmessage_unique`` leads with the
    # broadcast, ``outboxmessage_person`` is the person's.
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="+",
                                  db_index=False, db_constraint=False)
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+",
                               db_index=False, db_constraint=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "person"],
                                    name="outboxmessage_unique"),
            models.CheckConstraint(condition=models.Q(state__in=OUTBOX_STATES),
                                   name="outboxmessage_state_valid"),
        ]
        indexes = [models.Index(fields=["person"], name="outboxmessage_person"),
                   models.Index(fields=["broadcast", "state"], name="outboxmessage_state"),
                   models.Index(fields=["state", "next_attempt_at"],
                                name="outboxmessage_due")]

    def __str__(self) -> str:
        return f"outbox:{self.pk}"


class CapturedMessage(models.Model):
    """A message the built-in capture transport kept instead of sending (the embedded
    default, so a newcomer sees a broadcast without an SMTP server). The whole message is
    sealed by the keyring; only the newest ``CAPTURE_KEEP`` per account are kept."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+")
    broadcast = models.ForeignKey(Broadcast, null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    person = models.ForeignKey("people.Person", null=True, blank=True,
                               on_delete=models.CASCADE, related_name="+")
    raw = EncryptedBinaryField(null=True)  # NULL only in an anonymised restore
    row_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        indexes = [models.Index(fields=["account", "created_at"], name="captured_newest"),
                   models.Index(fields=["person"], name="captured_person")]

    def __str__(self) -> str:
        return f"captured:{self.pk}"


class TransactionalMessage(Sendable):
    """One email sent through the transactional API (``POST /api/v1/messages``): a
    template to one person, or to one address that is nobody in the account's people.

    Idempotent per account on the client's ``Idempotency-Key``, kept only as a keyed MAC
    (``key_mac``; a key may be made of anything, personal data included), with a MAC of
    the request it came with (``request_mac``) so the same key with another request is
    refused rather than answered with the first one's result. The address (when there is
    no person) and the template variables (``data``) are sealed by the keyring and
    cleared when the message reaches a final state: a sent message keeps ids only.
    Sent by the same pipeline as broadcasts, with the same lease and outcome columns."""

    # What only sending needed: set to NULL when the row reaches a final state.
    CLEARED_WHEN_FINAL = ("to_address", "data")

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+")
    template = models.ForeignKey(EmailTemplate, on_delete=models.PROTECT, related_name="+")
    sender = models.ForeignKey(SenderDomain, on_delete=models.PROTECT, related_name="+")
    from_local = models.CharField(max_length=64)
    from_name = models.CharField(max_length=100, blank=True, default="")
    person = models.ForeignKey("people.Person", null=True, blank=True,
                               on_delete=models.CASCADE, related_name="+")
    to_address = EncryptedTextField(null=True, blank=True)
    data = EncryptedTextField(null=True, blank=True)  # JSON; None once final
    key_mac = models.CharField(max_length=64)
    request_mac = models.CharField(max_length=64)
    mac_version = models.PositiveIntegerField()
    row_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "key_mac"],
                                    name="transactional_key_unique"),
            models.CheckConstraint(condition=models.Q(state__in=OUTBOX_STATES),
                                   name="transactional_state_valid"),
        ]
        indexes = [models.Index(fields=["person"], name="transactional_person"),
                   models.Index(fields=["state", "next_attempt_at"],
                                name="transactional_due")]

    def __str__(self) -> str:
        return f"transactional:{self.pk}"


DELIVERY_KINDS = ("delivered", "bounced", "deferred", "complained", "rejected", "failed",
                  "opened", "clicked", "unsubscribed")


class DeliveryEvent(models.Model):
    """What an email service provider reported about one sent message (its delivery
    webhooks, ``messaging.webhooks``): ids and the kind only — never the address or the
    provider's text. Unique per provider event, so a replayed or repeated webhook is
    recorded once. Erasing the person deletes their events."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+")
    person = models.ForeignKey("people.Person", null=True, blank=True,
                               on_delete=models.CASCADE, related_name="+")
    broadcast = models.ForeignKey(Broadcast, null=True, blank=True,
                                  on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(TransactionalMessage, null=True, blank=True,
                                on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=[(k, k) for k in DELIVERY_KINDS])
    esp = models.CharField(max_length=20)
    event_id = models.CharField(max_length=64)  # the provider's, or a MAC of the event
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["esp", "event_id"], name="delivery_event_once"),
            models.CheckConstraint(condition=models.Q(kind__in=DELIVERY_KINDS),
                                   name="delivery_event_kind_valid"),
        ]
        indexes = [models.Index(fields=["person"], name="delivery_event_person"),
                   models.Index(fields=["broadcast", "kind"], name="delivery_event_kind")]

    def __str__(self) -> str:
        return f"delivery:{self.pk}"
