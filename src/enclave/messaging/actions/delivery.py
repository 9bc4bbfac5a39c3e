"""Recording what an email service provider reports about sent messages (its delivery
webhooks, ``messaging.webhooks``), as the system.

An event names the message it is about by the ``metadata["enclave"]`` the transport gave
it: :func:`signed_ref` — ``b<outbox id>`` or ``t<transactional id>`` and a keyed MAC of that, so
ids cannot be counted through, and another deployment's refs (other keys) name nothing
here. An event without a valid ref, or about a row that is gone (its person erased), is
ignored, as are events more than 30 days old or an hour ahead. Each is recorded once per
provider event id (a keyed MAC of the event when the provider gives none).

Suppression follows what the provider says, in the same transaction as the record:

* a complaint suppresses (reason ``complaint``);
* a bounce suppresses (reason ``bounce``) only when the provider calls it permanent
  (:func:`_permanent`: Postmark's HardBounce / BadEmailAddress, Mailgun's permanent
  failures, Brevo's hard_bounce / invalid_email, SparkPost's hard bounce classes, Amazon
  SES's Permanent bounces) — a soft bounce, a block or a refusal is recorded only;
* only the person's own address, and only when the event names that address (a person
  who changed address meanwhile keeps the new one); a transactional message to nobody in
  the account has no address left to compare with, so its events are recorded only.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from enclave.access.principal import authorize_system
from enclave.core import clock
from enclave.messaging.models import DeliveryEvent, OutboxMessage, TransactionalMessage

# anymail's normalised event types → ours (others — queued, sent, unknown — add nothing).
KINDS = {"delivered": "delivered", "bounced": "bounced", "deferred": "deferred",
         "complained": "complained", "rejected": "rejected", "failed": "failed",
         "opened": "opened", "clicked": "clicked", "unsubscribed": "unsubscribed"}
MAX_AGE = dt.timedelta(days=30)  # older events (a replay of a stale capture) are ignored
MAX_AHEAD = dt.timedelta(hours=1)  # clocks differ a little; a far-future time is forged
_REF_MAC_HEX = 16


def _ref_tag(base: str) -> list[str]:
    from enclave.keys import api as keys

    return [tag.hex()[:_REF_MAC_HEX]
            for _, tag in keys.mac_all("tokens", f"delivery-ref:{base}".encode())]


def signed_ref(base: str) -> str:
    """What a sent message carries for its provider to bring back: the envelope's ref
    (``b``/``t`` and the row id), a dot and a keyed MAC of it."""
    return f"{base}.{_ref_tag(base)[0]}"


def _row(value) -> OutboxMessage | TransactionalMessage | None:
    import hmac

    if not isinstance(value, str) or len(value) > 40 or value.count(".") != 1:
        return None
    base, tag = value.split(".")
    if len(base) < 2 or base[0] not in "bt" or not base[1:].isascii() \
            or not base[1:].isdigit() or len(base) > 20:
        return None
    if not any(hmac.compare_digest(tag, known) for known in _ref_tag(base)):
        return None
    if base[0] == "b":
        return OutboxMessage.objects.filter(pk=int(base[1:])) \
            .select_related("person", "broadcast__account").first()
    return TransactionalMessage.objects.filter(pk=int(base[1:])) \
        .select_related("person", "account").first()


_SPARKPOST_HARD = frozenset({"10", "30"})  # invalid recipient; no recipient


def _permanent(esp: str, event) -> bool:
    """Whether the provider calls this bounce permanent (see the module docstring)."""
    raw = getattr(event, "esp_event", None)
    try:
        if esp == "postmark":
            return raw.get("Type") in ("HardBounce", "BadEmailAddress")
        if esp == "mailgun":
            return raw["event-data"].get("severity") == "permanent"
        if esp == "brevo":
            return raw.get("event") in ("hard_bounce", "invalid_email")
        if esp == "sparkpost":
            inner = next(iter(raw["msys"].values()))
            return str(inner.get("bounce_class")) in _SPARKPOST_HARD
        if esp == "amazon_ses":
            return raw["bounce"].get("bounceType") == "Permanent"
    except (AttributeError, KeyError, TypeError, StopIteration):
        return False
    return False


def _event_id(esp: str, event) -> str:
    from enclave.keys import api as keys

    given = str(event.event_id or "")
    if given and len(given) <= 64:
        return given
    material = "|".join(str(part) for part in (esp, event.message_id, event.event_type,
                                               event.timestamp, event.recipient, given))
    return keys.mac("tokens", material.encode())[1].hex()


def _suppression(esp: str, kind: str, event, row) -> str | None:
    """The reason to suppress the row's person's address for, or None."""
    if not row.person_id or not row.person.email:
        return None
    if str(event.recipient or "").strip().lower() != row.person.email.lower():
        return None
    if kind == "complained":
        return "complaint"
    if kind == "bounced" and _permanent(esp, event):
        return "bounce"
    return None


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
    now = clock.now()
    if occurred.tzinfo is None or now - occurred > MAX_AGE or occurred - now > MAX_AHEAD:
        return False
    is_broadcast = isinstance(row, OutboxMessage)
    account = row.broadcast.account if is_broadcast else row.account
    reason = _suppression(esp, kind, event, row)
    try:
        with transaction.atomic():
            DeliveryEvent.objects.create(
                account_id=account.pk, person_id=row.person_id,
                broadcast_id=row.broadcast_id if is_broadcast else None,
                message_id=None if is_broadcast else row.pk, kind=kind, esp=esp,
                event_id=_event_id(esp, event), occurred_at=occurred)
            if reason:
                do_suppress_address(account, row.person.email, reason=reason, actor=None)
    except IntegrityError:  # this provider event was recorded already (or its row erased)
        return False
    except ValidationError:  # an address that can no longer be suppressed as written
        return False
    return True


def do_unsubscribe_by_mail(person, broadcast, *, request=None, actor=None) -> int:
    """The person sent mail to their mailto unsubscribe address (``messaging.mailto``):
    unsubscribe them from the broadcast's topics, as the link's one-click POST does
    (``unsubscribe_mail`` consent, audited). How many subscriptions changed; a replay
    changes none."""
    from enclave.audience.models import UNSUBSCRIBED, Subscription, Topic
    from enclave.audience.subscriptions import do_change_subscription

    authorize_system(actor)
    changed = 0
    with transaction.atomic():
        topics = Topic.objects.filter(account_id=person.account_id, pk__in=broadcast.topics)
        for topic in topics.order_by("pk"):
            before = Subscription.objects.filter(person=person, topic=topic) \
                .values_list("status", flat=True).first()
            if before is None or before == UNSUBSCRIBED:
                continue
            do_change_subscription(person, topic, False, method="unsubscribe_mail",
                                   actor=None, request=request)
            changed += 1
    return changed
