"""Recording what an email service provider reports about sent messages (its delivery
webhooks, ``messaging.webhooks``), as the system.

An event names the message it is about by the ``metadata["enclave"]`` the transport gave
it (``b<outbox id>`` or ``t<transactional id>``); an event without one, or about a row
that is gone (its person erased), is ignored. Recorded once per provider event id (a
keyed MAC of the event when the provider gives none). A hard bounce, a complaint or a
refusal by the provider suppresses the address — the person's current address, or, for
a transactional message to nobody in the account, the address the event names — so it
is never mailed again (``ADDRESS_SUPPRESSED`` is audited by the suppression itself).
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction

from enclave.access.principal import authorize_system
from enclave.core import clock
from enclave.messaging.models import DeliveryEvent, OutboxMessage, TransactionalMessage

# anymail's normalised event types → ours (others — queued, sent, unknown — add nothing).
KINDS = {"delivered": "delivered", "bounced": "bounced", "deferred": "deferred",
         "complained": "complained", "rejected": "rejected", "failed": "failed",
         "opened": "opened", "clicked": "clicked", "unsubscribed": "unsubscribed"}
SUPPRESSING = {"bounced": "bounce", "rejected": "bounce", "complained": "complaint"}
MAX_AGE = dt.timedelta(days=30)  # older events (a replay of a stale capture) are ignored


def _row(ref) -> OutboxMessage | TransactionalMessage | None:
    if not isinstance(ref, str) or len(ref) < 2 or ref[0] not in "bt" \
            or not ref[1:].isascii() or not ref[1:].isdigit() or len(ref) > 20:
        return None
    if ref[0] == "b":
        return OutboxMessage.objects.filter(pk=int(ref[1:])) \
            .select_related("person", "broadcast__account").first()
    return TransactionalMessage.objects.filter(pk=int(ref[1:])) \
        .select_related("person", "account").first()


def _soft(esp: str, event) -> bool:
    """A bounce the provider itself calls temporary (anymail reports Postmark's soft
    bounces as bounces): recorded, but the address is not suppressed for it."""
    raw = getattr(event, "esp_event", None)
    return esp == "postmark" and isinstance(raw, dict) and raw.get("Type") == "SoftBounce"


def _event_id(esp: str, event) -> str:
    from enclave.keys import api as keys

    given = str(event.event_id or "")
    if given and len(given) <= 64:
        return given
    material = "|".join(str(part) for part in (esp, event.message_id, event.event_type,
                                               event.timestamp, event.recipient, given))
    return keys.mac("tokens", material.encode())[1].hex()


def do_record_delivery_event(esp: str, event, *, actor=None) -> bool:
    """Record one anymail tracking ``event`` from ``esp``; whether it was new and about
    one of our messages."""
    from enclave.audience.subscriptions import do_suppress_address

    authorize_system(actor)
    kind = KINDS.get(getattr(event, "event_type", None))
    metadata = getattr(event, "metadata", None)
    row = _row(metadata.get("enclave") if isinstance(metadata, dict) else None)
    if kind is None or row is None:
        return False
    occurred = event.timestamp if isinstance(event.timestamp, dt.datetime) else clock.now()
    if occurred.tzinfo is None or clock.now() - occurred > MAX_AGE:
        return False
    is_broadcast = isinstance(row, OutboxMessage)
    account = row.broadcast.account if is_broadcast else row.account
    try:
        with transaction.atomic():
            DeliveryEvent.objects.create(
                account_id=account.pk, person_id=row.person_id,
                broadcast_id=row.broadcast_id if is_broadcast else None,
                message_id=None if is_broadcast else row.pk, kind=kind, esp=esp,
                event_id=_event_id(esp, event), occurred_at=occurred)
    except IntegrityError:  # this provider event was recorded already (or its row erased)
        return False
    if kind in SUPPRESSING and not _soft(esp, event):
        address = row.person.email if row.person_id else str(event.recipient or "")
        if address:
            do_suppress_address(account, address, reason=SUPPRESSING[kind], actor=None)
    return True
