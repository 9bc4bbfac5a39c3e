"""Email templates. ``source`` is what the member wrote (MJML or HTML with Liquid);
``compiled`` is that source turned into HTML with its CSS inlined — done once when the
template is saved (``messaging.rendering.compile_template``), so sending only runs the
Liquid personalisation per recipient."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from enclave.core import clock

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
