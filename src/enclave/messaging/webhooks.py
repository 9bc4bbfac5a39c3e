"""An email service provider's delivery webhooks: ``POST /webhooks/esp/<name>/``.

Only the configured provider's (``ENCLAVE_EMAIL_BACKEND=esp``, ``ENCLAVE_ESP``) and only
with its webhook secret — and, for a provider that signs, its signing key — set; anything
else is a 404. Requests are limited per client address (``esp.webhook``). Then, in order:

1. HTTP basic auth with the secret (``ENCLAVE_ESP_WEBHOOK_SECRET_FILE``, compared in
   constant time), for every provider and before anything reads the body: none → 401
   with a ``WWW-Authenticate`` challenge (Amazon SNS sends credentials only after one);
   wrong → 400;
2. Mailgun's signature is at most ``MAX_SKEW`` old (it signs a timestamp and a token, not
   the body: a captured signature must not be good for long);
3. django-anymail's own checks for that provider (Mailgun's HMAC signature, Amazon SNS's
   message form) and its parsing into normalised events.

A request refused at 1 (wrong credentials), 2 or 3 is a 400 with an audit row
(``ESP_WEBHOOK_REFUSED``: the provider and why — never anything from the body — at most
``esp.webhook.refused`` a client address, beyond which refusals are only logged) and
records nothing. Each event is recorded by :func:`do_record_delivery_event` — once per
provider event id, so a replayed or retried webhook changes nothing the second time.

``POST /webhooks/esp/<name>/inbound/`` is the provider's inbound webhook — mail it
received — served only when ``ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN`` is set, with the same
checks in the same order. A message to a mailto unsubscribe address this deployment made
(``messaging.mailto``; its envelope recipient or a To/Cc address) unsubscribes that
person from the broadcast's topics (``unsubscribe_mail`` consent), as the link's
one-click POST does; any other mail is dropped. Nothing of a message is kept or logged.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hmac
import importlib
import json
import logging

from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpResponse

from enclave.core import audit, clock, ratelimit
from enclave.core.models import AuditEventType
from enclave.messaging import esp as esps
from enclave.messaging.actions.delivery import do_record_delivery_event

log = logging.getLogger(__name__)
MAX_SKEW = dt.timedelta(minutes=15)


def _view(cfg, inbound: bool):
    spec = esps.ESPS[cfg.esp]
    module = importlib.import_module(f"anymail.webhooks.{spec.module}")
    options = esps.webhook_options(cfg)
    if not inbound:
        return getattr(module, spec.webhook_view)(**options)
    view_class = getattr(module, spec.inbound_view)
    if spec.inbound_batch or spec.inbound_attachments_by_api:
        view_class = _inbound_adjusted(view_class, spec)
    if spec.inbound_attachments_by_api:
        options["api_key"] = ""  # anymail insists on one; nothing is fetched with it
    return view_class(**options)


@functools.cache
def _inbound_adjusted(view_class, spec):
    """anymail's inbound view for a provider that posts several messages at once — one
    it cannot read (SparkPost's 8-bit mail, say) is dropped alone, not the whole batch
    refused and retried with everyone else's unsubscribes in it (a tracking event at the
    inbound URL still refuses it) — or whose attachments it would download: left out."""
    from anymail.exceptions import AnymailConfigurationError

    class Adjusted(view_class):
        def esp_to_anymail_event(self, *args):
            if spec.inbound_attachments_by_api and args and isinstance(args[0], dict):
                args = ({**args[0], "Attachments": []}, *args[1:])
            if not spec.inbound_batch:
                return super().esp_to_anymail_event(*args)
            try:
                return super().esp_to_anymail_event(*args)
            except AnymailConfigurationError:
                raise
            except Exception as exc:  # noqa: BLE001 — mail it cannot read names nobody
                log.info("esp inbound message unreadable",
                         extra={"esp": spec.module, "why": type(exc).__name__})
                return None

    return Adjusted


def _text(status: int, text: str, **headers) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, headers=headers,
                        content_type="text/plain; charset=utf-8")


def _refused(request, esp: str, why: str) -> HttpResponse:
    ip = audit.client_ip(request) or "unknown"
    if ratelimit.hit("esp.webhook.refused", ip).allowed:
        with transaction.atomic():
            audit.record(AuditEventType.ESP_WEBHOOK_REFUSED, actor=None, request=request,
                         target_type="esp", target_id=esp, extra={"esp": esp, "why": why})
    else:
        log.warning("esp webhook refused", extra={"esp": esp, "why": why})
    return _text(400, f"Webhook refused: {why}.")


def _credentials(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        return base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _mailgun_signed_at(request) -> dt.datetime | None:
    try:
        if request.content_type == "application/json":
            stamp = json.loads(request.body)["signature"]["timestamp"]
        else:
            stamp = request.POST["timestamp"]
        return dt.datetime.fromtimestamp(int(stamp), tz=dt.UTC)
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        return None


def _checked(request, esp: str, *, inbound: bool):
    """The provider's anymail view for a request that passed every check (see the module
    docstring), or the response refusing it."""
    cfg = settings.CONFIG
    if cfg.email_backend != "esp" or esp != cfg.esp or cfg.esp_webhook_secret_file is None \
            or (esps.ESPS[esp].signing_key and cfg.esp_webhook_signing_key_file is None) \
            or (inbound and not cfg.unsubscribe_mail_domain):
        raise Http404("No such webhook.")
    if not ratelimit.hit("esp.webhook", audit.client_ip(request) or "unknown").allowed:
        return _text(429, "Too many requests.", **{"Retry-After": "60"})
    given = _credentials(request)
    if given is None:
        return _text(401, "Authentication required.",
                     **{"WWW-Authenticate": 'Basic realm="enclave webhooks"'})
    secret = esps.webhook_options(cfg)["webhook_secret"][0]
    if not hmac.compare_digest(given.encode(), secret.encode()):
        return _refused(request, esp, "authentication")
    if esp == "mailgun":
        signed_at = _mailgun_signed_at(request)
        if signed_at is None or abs(clock.now() - signed_at) > MAX_SKEW:
            return _refused(request, esp, "stale signature")
    try:
        view = _view(cfg, inbound)
        view.run_validators(request)
    except Exception:  # noqa: BLE001 — a signature or form anymail refuses is a 400
        return _refused(request, esp, "authentication")
    return view


def _events(request, esp: str, *, inbound: bool):
    """The request's events, parsed by the provider's anymail view once every check
    passed; or the response refusing the request."""
    view = _checked(request, esp, inbound=inbound)
    if isinstance(view, HttpResponse):
        return view
    try:
        return view.parse_events(request)
    except Exception:  # noqa: BLE001 — whatever a body makes the parser raise is a 400
        return _refused(request, esp, "malformed")


def esp_webhook(request, esp: str):
    events = _events(request, esp, inbound=False)
    if isinstance(events, HttpResponse):
        return events
    recorded = sum(do_record_delivery_event(esp, event) for event in events)
    log.info("esp webhook", extra={"esp": esp, "events": len(events), "recorded": recorded})
    return HttpResponse(status=200)


MAX_RECIPIENTS = 50  # looked at per received message (envelope, To, Cc)
# To and Cc are read only when this short together: parsing an address list takes time
# that grows faster than its length (seconds for a few thousand addresses, and anyone
# may mail the domain); an unsubscribe names one address, and the envelope's is kept.
MAX_ADDRESS_CHARS = 8_000


def _recipients(message) -> list[str]:
    found = [message.envelope_recipient] if message.envelope_recipient else []
    if sum(len(value) for name, value in message.raw_items()
           if name.lower() in ("to", "cc")) > MAX_ADDRESS_CHARS:
        return found
    for header in ("to", "cc"):
        try:
            found += [a.addr_spec for a in getattr(message, header)]
        except Exception:  # noqa: BLE001, S112 — a header the parser cannot read names nobody
            continue
    return found[:MAX_RECIPIENTS]


def esp_inbound(request, esp: str):
    """Mail the provider received: a message to a mailto unsubscribe address unsubscribes
    its person from the broadcast's topics; anything else is dropped (200, so the
    provider does not retry it)."""
    from enclave.messaging import mailto
    from enclave.messaging.actions.delivery import do_unsubscribe_by_mail

    events = _events(request, esp, inbound=True)
    if isinstance(events, HttpResponse):
        return events
    done = 0
    for event in events:
        message = getattr(event, "message", None)
        if message is None:
            continue
        for recipient in _recipients(message):
            found = mailto.read(recipient)
            if found is not None:
                done += do_unsubscribe_by_mail(*found, request=request)
    log.info("esp inbound", extra={"esp": esp, "messages": len(events), "unsubscribed": done})
    return HttpResponse(status=200)
