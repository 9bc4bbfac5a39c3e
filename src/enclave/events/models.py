"""Ingested events and the 24-hour message-id window that makes ingest idempotent.

``Event`` rows are append-only facts sent by an account's own site or backend through
``POST /api/v1/events`` or the tracking spec's ``/api/ingest/v1/*`` (``events.spec``).
``MessageId`` holds one row per (account, client message id) seen in the last 24 hours;
its unique constraint is what stops a retried batch from being stored twice, across
threads and across app servers (docs/events.md). ``AnonymousId`` links a tracking-spec
anonymous id to the person it turned out to be.
"""

from __future__ import annotations

from django.db import models

from enclave.core import clock

EVENT_TYPES = ("identify", "track", "page", "screen", "group", "alias")


class Event(models.Model):
    # No single-column indexes on the two foreign keys: the composite indexes below start
    # with them (every index is written by every ingest).
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+", db_index=False)
    # Erasing a person deletes their events with them (people.actions.do_erase_person
    # deletes the Person row; CASCADE removes these rows in the same transaction).
    person = models.ForeignKey("people.Person", null=True, blank=True,
                               on_delete=models.CASCADE, related_name="+", db_index=False)
    type = models.CharField(max_length=8)
    name = models.CharField(max_length=200, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    message_id = models.CharField(max_length=100, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=clock.now)
    # The public id of the API key that sent it (never the secret).
    key_public_id = models.CharField(max_length=40, blank=True)
    # The tracking spec's anonymousId (a visitor not yet identified) and the call's
    # context (page, campaign, user agent, IP...). An anonymous event has no person
    # until an identify or alias links its anonymous id (``AnonymousId``): then it is
    # attached to that person ("stitched").
    # Database defaults too: native ingest's COPY and older tools leave both out.
    anonymous_id = models.CharField(max_length=100, blank=True, default="", db_default="")
    context = models.JSONField(default=dict, blank=True, db_default={})

    class Meta:
        indexes = [
            models.Index(fields=["account", "received_at"], name="event_account_received"),
            # A person's events (timeline, erasure's cascade) and segment rules "did X at
            # least N times in the last D days" probed per candidate person
            # (audience.rules: EXISTS … OFFSET N-1).
            models.Index(fields=["person", "name", "occurred_at"],
                         name="event_person_name_time"),
            # "Did X in the last D days" over the whole account (a semi-join).
            models.Index(fields=["account", "name", "occurred_at", "person"],
                         name="event_account_name_time"),
            # Stitching: an anonymous id's events still without a person. Partial, so
            # events of known people (nearly all) never write it.
            models.Index(fields=["account", "anonymous_id"], name="event_anonymous_unlinked",
                         condition=models.Q(person__isnull=True) & ~models.Q(anonymous_id="")),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(type__in=EVENT_TYPES),
                                   name="event_type_valid"),
        ]


class MessageId(models.Model):
    """A client message id seen recently. Rows older than 24 hours are purged (hourly job)
    and, until then, treated as absent by the ingest insert itself."""

    # No index of its own: the unique constraint below starts with it.
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+", db_index=False)
    message_id = models.CharField(max_length=100)
    received_at = models.DateTimeField(default=clock.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "message_id"],
                                    name="event_message_id_unique"),
        ]


class AnonymousId(models.Model):
    """An anonymous id (the tracking spec's ``anonymousId``, or an alias's ``previousId``)
    linked to the person it turned out to be. The first link wins: a later identify or
    alias naming the same anonymous id with another person changes nothing, so a key
    cannot take over a visitor another call already identified. Erasing the person
    deletes their links with them."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE,
                                related_name="+", db_index=False)
    anonymous_id = models.CharField(max_length=100)
    person = models.ForeignKey("people.Person", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "anonymous_id"],
                                    name="event_anonymous_id_unique"),
        ]
