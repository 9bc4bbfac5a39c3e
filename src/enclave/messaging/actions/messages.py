"""Transactional messages: one template to one person or address, queued once per
idempotency key (``POST /api/v1/messages``). Sending: ``messaging.transactional``.

Idempotency (the client's ``Idempotency-Key``, scoped to the account): the first request
with a key queues the message; a later request with the same key and the same body
gets that message back (nothing new is queued, even while the first is still being
sent); the same key with another body is refused (422), never answered with the first
one's result. Keys and bodies are kept only as keyed MACs (purpose ``tokens``, looked up
under every usable key version, so a rotation does not forget them).

Audit rows name the message by its row id and the template — never the address or
the variables.
"""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize
from enclave.core import audit
from enclave.core.models import AuditEventType
from enclave.core.validation import MissingReference
from enclave.messaging.actions.broadcasts import SENDER_UNVERIFIED, _clean_from, _own
from enclave.messaging.models import (
    VERIFIED,
    EmailTemplate,
    SenderDomain,
    TransactionalMessage,
)

P = Permission
KEY_MAX = 255
DATA_MAX_BYTES = 16 * 1024
DATA_MAX_DEPTH = 8
KEY_REUSED = ("This Idempotency-Key was used with a different request; use a new key "
              "for a new message.")
NO_SUCH_PERSON = "No such person."


def _clean_key(key) -> str:
    key = str(key or "")
    if not key or len(key) > KEY_MAX or not key.isascii() or not key.isprintable():
        raise ValidationError({"idempotency_key": f"1 to {KEY_MAX} printable ASCII "
                                                  "characters."})
    return key


def _depth(value, limit: int) -> int:
    """How many objects/arrays deep ``value`` nests (a plain value: 0), counted up to
    ``limit`` + 1."""
    depth, level = 0, [value]
    while depth <= limit:
        level = [item for item in level if isinstance(item, dict | list)]
        if not level:
            break
        depth += 1
        level = [v for item in level
                 for v in (item.values() if isinstance(item, dict) else item)]
    return depth


def _clean_data(data) -> str:
    """The template variables as stored (JSON text): an object of plain JSON values, at
    most ``DATA_MAX_BYTES`` and ``DATA_MAX_DEPTH`` levels deep."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationError({"data": "An object of template variables (data.<key>)."})
    if _depth(data, DATA_MAX_DEPTH) > DATA_MAX_DEPTH:
        raise ValidationError({"data": f"At most {DATA_MAX_DEPTH} levels deep."})
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False)
    except (TypeError, ValueError):
        raise ValidationError({"data": "Plain JSON values only."}) from None
    if len(text.encode("utf-8")) > DATA_MAX_BYTES:
        raise ValidationError({"data": f"At most {DATA_MAX_BYTES // 1024} KB."})
    return text


def _clean_to(person_id, email) -> dict:
    """The recipient as the request gave it: ``{"person": id}`` or ``{"email": address}``
    (the address in the one stored form)."""
    from enclave.people.actions import _clean_email

    if (person_id is None) == (email is None):
        raise ValidationError({"to": "Give either a person (id) or an email address."})
    if person_id is not None:
        if isinstance(person_id, bool) or not isinstance(person_id, int) \
                or not 0 < person_id < 2**63:
            raise ValidationError({"to": "A person id."})
        return {"person": person_id}
    try:
        address = _clean_email(str(email).strip()) if isinstance(email, str) else ""
    except ValueError as exc:
        raise ValidationError({"to": str(exc)}) from None
    if not address:
        raise ValidationError({"to": "Enter a valid email address."})
    return {"email": address}


def _recipient(account_id: int, to: dict) -> tuple[int | None, str | None]:
    """(person id, None) or (None, address): an address that belongs to one of the
    account's (unarchived) people is sent as to that person (their fields, their
    erasure)."""
    from enclave.people.models import Person

    people = Person.objects.filter(account_id=account_id)
    if "person" in to:
        if not people.filter(pk=to["person"]).exists():
            raise MissingReference({"to": NO_SUCH_PERSON})
        return to["person"], None
    found = people.filter(email=to["email"], archived_at__isnull=True) \
        .values_list("pk", flat=True).first()
    return (found, None) if found is not None else (None, to["email"])


def _macs(account_id: int, key: str, request: str):
    from enclave.keys import api as keys

    return (keys.mac_all("tokens", f"idempotency:{account_id}:{key}".encode()),
            f"idempotency-request:{account_id}:{request}".encode())


def _earlier(account_id: int, key_macs, request: bytes) -> TransactionalMessage | None:
    """The message queued earlier under this key (None: none); ValidationError when it
    came with another request."""
    from enclave.keys import api as keys

    found = TransactionalMessage.objects.filter(
        account_id=account_id, key_mac__in=[tag.hex() for _, tag in key_macs]).first()
    if found is not None and not keys.verify_mac("tokens", found.mac_version, request,
                                                 bytes.fromhex(found.request_mac)):
        raise ValidationError({"idempotency_key": KEY_REUSED})
    return found


def do_send_message(account, *, template: EmailTemplate, sender: SenderDomain,
                    from_local: str, from_name: str = "", person_id=None, email=None,
                    data=None, idempotency_key: str, actor: Principal,
                    request=None) -> tuple[TransactionalMessage, bool]:
    """Queue ``template`` to one person (``person_id``) or address (``email``), sent
    from ``from_local``@``sender``; (the message, whether it was queued now — False when
    the key's earlier message is returned). Needs ``email.manage``; the template and
    sender domain must be the account's, the domain verified (409 otherwise)."""
    from enclave.audience.subscriptions import count_lookup
    from enclave.billing import entitlements
    from enclave.keys import api as keys

    authorize(actor, P.EMAIL_MANAGE, account_id=account.pk)
    key = _clean_key(idempotency_key)
    local, display = _clean_from(from_local, from_name)
    _own(account.pk, template, sender)
    data_text = _clean_data(data)
    to = _clean_to(person_id, email)
    # The request as sent (never who the address turned out to be: a replay must not
    # tell whose address it is, and must not change when people change).
    canonical = json.dumps({"template": template.pk, "sender": sender.pk, "from": local,
                            "name": display, "to": to, "data": json.loads(data_text)},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key_macs, request_message = _macs(account.pk, key, canonical)
    earlier = _earlier(account.pk, key_macs, request_message)
    if earlier is not None:
        return earlier, False
    if sender.state != VERIFIED:
        raise MissingReference({"sender": SENDER_UNVERIFIED})
    if not actor.can(P.PEOPLE_WRITE):
        # Whether it was sent tells whether the address is suppressed: without the
        # right to ask that directly, each send counts as a suppression look-up.
        count_lookup(actor)
    person, address = _recipient(account.pk, to)
    version, key_tag = key_macs[0]  # the primary key's
    request_tag = dict(keys.mac_all("tokens", request_message))[version]
    try:
        with transaction.atomic():
            entitlements.check_sending(account.pk)
            entitlements.check(account.pk, entitlements.MONTHLY_SENDS)
            message = TransactionalMessage.objects.create(
                account=account, template=template, sender=sender, from_local=local,
                from_name=display, person_id=person, to_address=address, data=data_text,
                key_mac=key_tag.hex(), request_mac=request_tag.hex(), mac_version=version)
            # Ids only, and not the person: the audit log's readers need not be
            # allowed to learn whose address it was.
            audit.record(AuditEventType.MESSAGE_QUEUED, actor=actor, account_id=account.pk,
                         request=request, target_type="message", target_id=message.pk,
                         extra={"message": str(message.row_id), "template": template.pk})
    except IntegrityError:
        # The same key, queued by a concurrent request just now — or the person was
        # erased before this commit (their row's foreign key failed).
        earlier = _earlier(account.pk, key_macs, request_message)
        if earlier is None:
            raise MissingReference({"to": NO_SUCH_PERSON}) from None
        return earlier, False
    return message, True


def count_idempotency_macs(purpose: str, version: int) -> int:
    """Transactional messages whose idempotency key is a MAC under ``tokens``
    v``version`` (the keyring's reference count: retiring it would forget them)."""
    if purpose != "tokens":
        return 0
    return TransactionalMessage.objects.filter(mac_version=version).count()
