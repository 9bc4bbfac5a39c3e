"""An email service provider's delivery webhooks: ``POST /webhooks/esp/<name>/``.

Only the configured provider's (``ENCLAVE_EMAIL_BACKEND=esp``, ``ENCLAVE_ESP``) and only
with its webhook secret — and, for a provider that signs, its signing key — set; anything
else is a 404. Each request is checked by
django-anymail's view for that provider — HTTP basic auth with the secret
(``ENCLAVE_ESP_WEBHOOK_SECRET_FILE``, compared in constant time) and, where the provider
signs its webhooks (Mailgun), the signature — and parsed into anymail's
normalised events; a request that fails either is a 400 and an audit row
(``ESP_WEBHOOK_REFUSED``: the provider and why, nothing from the body), and nothing is
recorded. Requests are limited per client address (``esp.webhook``).

Each event is recorded by :func:`do_record_delivery_event` — once per provider event id,
so a replayed or retried webhook changes nothing the second time.
"""

from __future__ import annotations

import importlib
import logging

from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpResponse

from enclave.core import audit, ratelimit
from enclave.core.models import AuditEventType
from enclave.messaging import esp as esps
from enclave.messaging.actions.delivery import do_record_delivery_event

log = logging.getLogger(__name__)


def _tracking_view(cfg):
    spec = esps.ESPS[cfg.esp]
    module = importlib.import_module(f"anymail.webhooks.{spec.module}")
    return getattr(module, spec.webhook_view)(**esps.webhook_options(cfg))


def _refused(request, esp: str, why: str) -> HttpResponse:
    with transaction.atomic():
        audit.record(AuditEventType.ESP_WEBHOOK_REFUSED, actor=None, request=request,
                     target_type="esp", target_id=esp, extra={"esp": esp, "why": why})
    return HttpResponse(f"Webhook refused: {why}.\n", status=400,
                        content_type="text/plain; charset=utf-8")


def esp_webhook(request, esp: str):
    from anymail.exceptions import AnymailWebhookValidationFailure

    cfg = settings.CONFIG
    if cfg.email_backend != "esp" or esp != cfg.esp or cfg.esp_webhook_secret_file is None \
            or (esps.ESPS[esp].signing_key and cfg.esp_webhook_signing_key_file is None):
        raise Http404("No such webhook.")
    if not ratelimit.hit("esp.webhook", audit.client_ip(request) or "unknown").allowed:
        return HttpResponse("Too many requests.\n", status=429, headers={"Retry-After": "60"},
                            content_type="text/plain; charset=utf-8")
    try:
        view = _tracking_view(cfg)
        view.run_validators(request)
    except AnymailWebhookValidationFailure:
        return _refused(request, esp, "authentication")
    try:
        events = view.parse_events(request)
    except Exception:  # noqa: BLE001 — whatever a body makes the parser raise is a 400
        return _refused(request, esp, "malformed")
    recorded = sum(do_record_delivery_event(esp, event) for event in events)
    log.info("esp webhook", extra={"esp": esp, "events": len(events), "recorded": recorded})
    return HttpResponse(status=200)
