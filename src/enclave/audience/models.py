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
