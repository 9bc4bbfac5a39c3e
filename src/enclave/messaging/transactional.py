"""Sending transactional messages (``POST /api/v1/messages``): the same guarantees as a
broadcast's outbox, through the same pieces of the pipeline.

A worker claims due rows (``FOR UPDATE SKIP LOCKED``) under a lease token, checks each is
still sendable (a person not archived and with an address; an address not suppressed —
hard bounces and complaints stop transactional mail too; no topic consent is needed: the
message is one the person's own action asked for), renders them in the limited child
process, composes and DKIM-signs them (no unsubscribe headers: there is nothing to
unsubscribe from; the person's ``preferences_url`` is there for a template that wants
it), renews the lease before each hand-over (``pipeline._holds``) and records the
outcome at once (``pipeline.hand_over``: sent; deferred with backoff; failed, a 5xx
suppressing the address). A final row loses its sealed address and variables in the same
write (``TransactionalMessage.CLEARED_WHEN_FINAL``). Transactional messages go before
broadcasts (``tasks.send_outbox``) and are not paced by a domain's broadcast throttle.
"""

from __future__ import annotations

import dataclasses
import json
import secrets

from django.db import transaction
from django.db.models import F

from enclave.core import clock
from enclave.messaging import access, compose, dkim, pipeline, rendering
from enclave.messaging.models import (
    OUTBOX_DEFERRED,
    OUTBOX_FAILED,
    OUTBOX_SENDING,
    OUTBOX_SKIPPED,
    TransactionalMessage,
)


def claim(limit: int = pipeline.BATCH, *, now=None) -> pipeline.Claim:
    """Up to ``limit`` due transactional messages, leased to the caller under a new
    token; rows whose worker was lost after their last allowed attempt fail."""
    now, token = now or clock.now(), secrets.token_hex(16)
    with transaction.atomic():
        TransactionalMessage.objects.filter(
            state=OUTBOX_SENDING, claimed_at__lt=now - pipeline.LEASE,
            attempts__gte=pipeline.MAX_ATTEMPTS).update(
            state=OUTBOX_FAILED, detail="gave up: worker lost", lease_id="",
            claimed_at=None, **dict.fromkeys(TransactionalMessage.CLEARED_WHEN_FINAL))
        ids = list(TransactionalMessage.objects.select_for_update(skip_locked=True)
                   .filter(pipeline._due(now)).order_by("pk")
                   .values_list("pk", flat=True)[:limit])
        TransactionalMessage.objects.filter(pk__in=ids).update(
            state=OUTBOX_SENDING, claimed_at=now, lease_id=token,
            attempts=F("attempts") + 1)
    return pipeline.Claim(token, ids)


def _address(row: TransactionalMessage) -> str:
    return row.person.email if row.person_id else (row.to_address or "")


def _unsendable(rows: list[TransactionalMessage]) -> dict[int, str]:
    """Why each row may not be sent (rows that may be are absent)."""
    from enclave.audience import subscriptions

    reasons: dict[int, str] = {}
    by_account: dict[int, list[TransactionalMessage]] = {}
    for row in rows:
        if (row.person_id and row.person.archived_at is not None) or not _address(row):
            reasons[row.pk] = "no longer a recipient"
        else:
            by_account.setdefault(row.account_id, []).append(row)
    for account_id, group in by_account.items():
        suppressed = subscriptions.suppressed_among(account_id, [_address(r) for r in group])
        reasons.update({row.pk: "suppressed" for row in group
                        if _address(row) in suppressed})
    return reasons


def _context(row: TransactionalMessage, definitions) -> dict:
    from enclave.access.permissions import ALL
    from enclave.audience.subscriptions import preferences_url

    if row.person_id:
        person = rendering.person_context(row.person, ALL, definitions)
        links = {"unsubscribe_url": "", "preferences_url": preferences_url(row.person)}
    else:  # an address that is nobody in the account: only the address is known
        person = {**dict.fromkeys(rendering.person_fields(), ""), "email": row.to_address,
                  "custom": {d.key: "" for d in definitions}}
        links = {"unsubscribe_url": "", "preferences_url": ""}
    return {"person": person, "account": {"name": row.account.name},
            rendering.DATA: json.loads(row.data or "{}"), **links}


def send_batch(claimed: pipeline.Claim, transport, *, now=None) -> dict[str, int]:
    """Send the ``claimed`` rows through ``transport``; how many ended in each state."""
    from enclave.people.access import field_definitions

    now = now or clock.now()
    rows = list(TransactionalMessage.objects.filter(
        pk__in=claimed.ids, state=OUTBOX_SENDING, lease_id=claimed.token)
        .select_related("person", "template", "sender", "account").order_by("pk"))
    counts: dict[str, int] = {}

    def done(state: str) -> None:
        counts[state] = counts.get(state, 0) + 1

    reasons = _unsendable(rows)
    by_template: dict[int, list[TransactionalMessage]] = {}
    for row in rows:
        if row.pk in reasons:
            pipeline._finish(row, OUTBOX_SKIPPED, reasons[row.pk])
            done(OUTBOX_SKIPPED)
        else:
            by_template.setdefault(row.template_id, []).append(row)
    keys: dict[int, tuple[str, dkim.PrivateKey] | None] = {}
    for group in by_template.values():
        template = group[0].template
        definitions = field_definitions(template.account_id)
        contexts = [_context(row, definitions) for row in group]
        rendered = pipeline._render(template, contexts)
        for row, out in zip(group, rendered, strict=True):
            if row.sender_id not in keys:
                keys[row.sender_id] = access.signing_key(row.sender)
            key = keys[row.sender_id]
            if key is None:  # the domain lost its verification: wait, never unsigned
                pipeline._deferred(row, "sender domain unverified", now=now)
                done(OUTBOX_DEFERRED)
                continue
            if not pipeline._holds(row, claimed.token):
                continue  # the lease ran out and another worker took the row
            try:
                done(_send_one(row, out, key, transport, now=now))
            except Exception:  # noqa: BLE001 — one row's trouble never stops the batch
                pipeline._deferred(row, "internal error", now=now)
                done(OUTBOX_DEFERRED)
    return counts


def _send_one(row: TransactionalMessage, out, key, transport, *, now) -> str:
    if out is None or out == pipeline.RENDER_LIMITS:
        pipeline._finish(row, OUTBOX_FAILED, out or "template failed to render")
        return OUTBOX_FAILED
    address = _address(row)
    try:
        envelope, raw = compose.message(
            domain=row.sender.domain, from_local=row.from_local, from_name=row.from_name,
            to=address, rendered=out, message_id=row.message_id, unsubscribe_url=None,
            feedback_id=f"{row.pk}:{row.account_id}:transactional:enclave",
            selector=key[0], private_key=key[1], now=now)
    except compose.Unsendable as exc:
        pipeline._finish(row, OUTBOX_FAILED, str(exc))
        return OUTBOX_FAILED
    envelope = dataclasses.replace(envelope, account_id=row.account_id,
                                   person_id=row.person_id, ref=f"t{row.pk}")
    return pipeline.hand_over(row, envelope, raw, transport, account=row.account,
                              address=address, now=now)


def run_once(transport, *, limit: int = pipeline.BATCH, now=None) -> dict[str, int]:
    """Claim one batch of transactional messages and send it; the counts (empty when
    none was due)."""
    claimed = claim(limit, now=now)
    return send_batch(claimed, transport, now=now) if claimed.ids else {}
