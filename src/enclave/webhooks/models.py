"""Outgoing webhook endpoints and their deliveries.

An endpoint is an https URL of the account's own systems, subscribed to event types
(``webhooks.events.TYPES``), with a signing secret sealed by the keyring (the previous
one kept for an overlap after a rotation) and a role ceiling: payloads show personal
data as that role — and the endpoint's creator, now — may see it.

A delivery is one event for one endpoint: the event as ids and names (JSON text — the
request body, with a person's values as the endpoint may see them then, is made at each
attempt: ``webhooks.events.body``), its ``webhook-id`` (the same on every attempt and on
a replay, so the receiver can drop duplicates), and where it stands. Deliveries of one
endpoint go out in the order they were made: only the oldest undelivered one is ever
tried (``webhooks.delivery``).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from enclave.core import clock
from enclave.keys.fields import EncryptedTextField

ACTIVE, DISABLED = "active", "disabled"
ENDPOINT_STATES = (ACTIVE, DISABLED)
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_STATES = (PENDING, DELIVERED, FAILED)


class WebhookEndpoint(models.Model):
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+")
    url = models.CharField(max_length=2048)
    description = models.CharField(max_length=200, blank=True, default="")
    event_types = models.JSONField(default=list)
    role_ceiling = models.CharField(max_length=16)
    state = models.CharField(max_length=8, default=ACTIVE)
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    row_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    secret = EncryptedTextField()
    # After a rotation the old secret signs too (two signatures) until ``previous_until``.
    previous_secret = EncryptedTextField(null=True, blank=True)
    previous_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)
    # A worker delivering this endpoint's queue holds it until ``leased_until``.
    leased_until = models.DateTimeField(null=True, blank=True)
    lease_id = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=ENDPOINT_STATES),
                                   name="webhookendpoint_state_valid"),
        ]
        indexes = [models.Index(fields=["account", "state"], name="webhookendpoint_account")]

    def __str__(self) -> str:
        return f"webhook:{self.pk}"


class WebhookDelivery(models.Model):
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE,
                                 related_name="deliveries")
    event_type = models.CharField(max_length=64)
    message_id = models.CharField(max_length=40, unique=True)  # "msg_" + 32 hex digits
    payload = models.TextField()  # the event: type, timestamp, ids — no personal values
    # Whom the event is about (None: nobody, or an erasure notice with ids only):
    # erasing the person deletes the delivery (access.personal_data).
    person_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    state = models.CharField(max_length=12, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_detail = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=DELIVERY_STATES),
                                   name="webhookdelivery_state_valid"),
        ]
        indexes = [models.Index(fields=["endpoint", "state", "id"],
                                name="webhookdelivery_queue"),
                   models.Index(fields=["person_id"], name="webhookdelivery_person")]

    def __str__(self) -> str:
        return f"webhook-delivery:{self.pk}"
