"""Sender-domain state changes: add a domain (with its first DKIM key), check its DNS
records (verifying it, and letting a published new key take over), rotate its key,
remove it. Audit rows name the domain by id and keys by selector — never key material.

DNS is asked and keys are made outside the transaction (both are slow); the results are
applied to the locked rows inside it.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize
from enclave.core import audit, clock, ratelimit
from enclave.core.models import AuditEventType
from enclave.core.validation import MissingReference
from enclave.messaging import dkim, domains
from enclave.messaging.models import (
    ACTIVE,
    PENDING,
    RETIRED,
    UNKNOWN,
    UNVERIFIED,
    VERIFIED,
    DkimKey,
    SenderDomain,
)

P = Permission
DUPLICATE_DOMAIN = "This domain is added already."
ROTATION_WAITING = ("A new key is already waiting for its DNS record; publish it and "
                    "check the domain.")
MAX_DOMAINS = 50
DOMAIN_IN_USE = ("Broadcasts or transactional messages were sent from this domain; it "
                 "stays with their record.")


def _new_key(domain: SenderDomain, now, pair: tuple[str, str]) -> DkimKey:
    """A pending key from ``pair`` (made before the transaction: it takes ~50 ms)."""
    taken = set(DkimKey.objects.filter(domain=domain).values_list("selector", flat=True))
    private, public = pair
    key = DkimKey(domain=domain, selector=dkim.selector_for(now, taken), state=PENDING,
                  public_key=public, created_at=now)
    key.private_key = private
    key.save()
    return key


def do_add_sender_domain(account, domain: str, *, actor: Principal,
                         request=None) -> SenderDomain:
    """Add ``domain`` (unverified) with a new DKIM key whose record the member publishes.
    Needs ``email.manage``; ValidationError for a name that is not a public domain, or
    one the account has already."""
    authorize(actor, P.EMAIL_MANAGE, account_id=account.pk)
    try:
        name = domains.clean_domain(domain)
    except domains.BadDomain as exc:
        raise ValidationError({"domain": str(exc)}) from None
    if SenderDomain.objects.filter(account=account).count() >= MAX_DOMAINS:
        raise ValidationError({"domain": f"At most {MAX_DOMAINS} sender domains."})
    ratelimit.require("sender_domain.add", str(account.pk))
    pair, now = dkim.new_key_pair(), clock.now()
    try:
        with transaction.atomic():
            sender = SenderDomain.objects.create(account=account, domain=name,
                                                 created_at=now)
            key = _new_key(sender, now, pair)
            audit.record(AuditEventType.SENDER_DOMAIN_ADDED, actor=actor,
                         account_id=account.pk, request=request,
                         target_type="sender_domain", target_id=sender.pk,
                         extra={"selector": key.selector})
    except IntegrityError:
        raise ValidationError({"domain": DUPLICATE_DOMAIN}, code="unique") from None
    return sender


def do_check_sender_domain(sender: SenderDomain, *, actor: Principal,
                           request=None) -> SenderDomain:
    """Ask DNS for the domain's records and apply what it says: a published pending key
    takes over signing (the active one is retired, its private key deleted); the
    domain is verified while its signing key's record is published, unverified when it
    is not, and — when DNS cannot be asked — keeps a verification it had (else
    ``unknown``). Needs ``email.manage``; ``sender_domain.check`` limits how often
    (ratelimit.Limited)."""
    authorize(actor, P.EMAIL_MANAGE, account_id=sender.account_id)
    ratelimit.require("sender_domain.check", str(sender.account_id))
    keys = list(DkimKey.objects.filter(domain=sender, state__in=(PENDING, ACTIVE)))
    try:
        found, detail = domains.check(sender.domain, keys), None
    except domains.DnsUnavailable as exc:
        found, detail = None, (f"DNS could not be asked from this server: {exc}. Publish "
                               "the records and check again.")
    now = clock.now()
    with transaction.atomic():
        locked = SenderDomain.objects.select_for_update().filter(
            pk=sender.pk, account_id=sender.account_id).first()
        if locked is None:
            raise MissingReference({"domain": "The domain was removed meanwhile."})
        if found is not None:
            detail = _apply(locked, found, now, actor=actor, request=request)
        new_state = locked.state if found is None and locked.state == VERIFIED else (
            UNKNOWN if found is None else
            VERIFIED if DkimKey.objects.filter(domain=locked, state=ACTIVE,
                                               selector__in=found.published).exists()
            else UNVERIFIED)
        if new_state != locked.state:
            audit.record(AuditEventType.SENDER_DOMAIN_STATE_CHANGED, actor=actor,
                         account_id=locked.account_id, request=request,
                         target_type="sender_domain", target_id=locked.pk,
                         extra={"from": locked.state, "to": new_state})
            locked.state = new_state
            if new_state == VERIFIED and locked.verified_at is None:
                locked.verified_at = now
        locked.check_detail, locked.checked_at = detail[:500], now
        locked.save()
    return locked


def _apply(sender: SenderDomain, found: domains.Check, now, *, actor, request) -> str:
    """Let a published pending key take over; the check's one-line summary."""
    pending = DkimKey.objects.select_for_update().filter(domain=sender, state=PENDING).first()
    if pending is not None and pending.selector in found.published:
        old = DkimKey.objects.select_for_update().filter(domain=sender, state=ACTIVE).first()
        if old is not None:
            old.state, old.retired_at, old.private_key = RETIRED, now, None
            old.save()
        pending.state, pending.activated_at = ACTIVE, now
        pending.save()
        audit.record(AuditEventType.DKIM_KEY_ACTIVATED, actor=actor,
                     account_id=sender.account_id, request=request,
                     target_type="sender_domain", target_id=sender.pk,
                     extra={"selector": pending.selector,
                            "retired": old.selector if old else None})
    keys = DkimKey.objects.filter(domain=sender, state__in=(PENDING, ACTIVE))
    parts = [f"DKIM {k.selector}: {'published' if k.selector in found.published else 'missing'}"
             for k in keys.order_by("created_at")]
    parts.append(f"SPF: {'found' if found.spf else 'none'}")
    parts.append(f"DMARC: {'found' if found.dmarc else 'none'}")
    return "; ".join(parts) + "."


def do_rotate_dkim_key(sender: SenderDomain, *, actor: Principal,
                       request=None) -> DkimKey:
    """Make a new key under a new selector; the active key signs until the new one's
    record is found by a check. Refused (409) while a key waits for its record (a new
    domain's first key, or an earlier rotation)."""
    authorize(actor, P.EMAIL_MANAGE, account_id=sender.account_id)
    ratelimit.require("sender_domain.add", str(sender.account_id))
    pair, now = dkim.new_key_pair(), clock.now()
    with transaction.atomic():
        locked = SenderDomain.objects.select_for_update().filter(
            pk=sender.pk, account_id=sender.account_id).first()
        if locked is None:
            raise MissingReference({"domain": "The domain was removed meanwhile."})
        # A domain always has a pending or an active key; with a pending one (a new
        # domain's first key, or a rotation under way) there is nothing to rotate yet.
        if DkimKey.objects.filter(domain=locked, state=PENDING).exists():
            raise MissingReference({"domain": ROTATION_WAITING})
        key = _new_key(locked, now, pair)
        audit.record(AuditEventType.DKIM_KEY_CREATED, actor=actor,
                     account_id=locked.account_id, request=request,
                     target_type="sender_domain", target_id=locked.pk,
                     extra={"selector": key.selector})
    return key


def do_remove_sender_domain(sender: SenderDomain, *, actor: Principal,
                            request=None) -> None:
    """Remove the domain and delete its keys. A domain already gone is a no-op; one that
    broadcasts or transactional messages were sent from stays (409: ``DOMAIN_IN_USE``)."""
    authorize(actor, P.EMAIL_MANAGE, account_id=sender.account_id)
    with transaction.atomic():
        try:
            deleted, _ = SenderDomain.objects.filter(
                pk=sender.pk, account_id=sender.account_id).delete()
        except ProtectedError:
            raise MissingReference({"domain": DOMAIN_IN_USE}) from None
        if deleted:
            audit.record(AuditEventType.SENDER_DOMAIN_REMOVED, actor=actor,
                         account_id=sender.account_id, request=request,
                         target_type="sender_domain", target_id=sender.pk,
                         extra={"domain": sender.domain})


MAX_PER_SECOND = 10_000
THROTTLE_RANGE = f"A whole number of messages a second from 1 to {MAX_PER_SECOND:,}, or none."


def do_throttle_sender_domain(sender: SenderDomain, max_per_second, *, actor: Principal,
                              request=None) -> SenderDomain:
    """Send at most ``max_per_second`` messages a second from the domain, across every
    worker (None: no limit) — for a new domain warming up its reputation or a relay's
    own limit."""
    authorize(actor, P.EMAIL_MANAGE, account_id=sender.account_id)
    if max_per_second is not None and (isinstance(max_per_second, bool) or not isinstance(
            max_per_second, int) or not 1 <= max_per_second <= MAX_PER_SECOND):
        raise ValidationError({"max_per_second": THROTTLE_RANGE})
    with transaction.atomic():
        locked = SenderDomain.objects.select_for_update().filter(
            pk=sender.pk, account_id=sender.account_id).first()
        if locked is None:
            raise MissingReference({"domain": "No such sender domain."})
        if locked.max_per_second != max_per_second:
            audit.record(AuditEventType.SENDER_DOMAIN_THROTTLE_CHANGED, actor=actor,
                         account_id=locked.account_id, request=request,
                         target_type="sender_domain", target_id=locked.pk,
                         extra={"from": locked.max_per_second, "to": max_per_second})
            locked.max_per_second, locked.next_slot_at = max_per_second, None
            locked.save(update_fields=["max_per_second", "next_slot_at"])
    return locked


def do_set_postal_address(account, address, *, actor: Principal, request=None) -> str:
    """Set the postal address every broadcast ends with (``messaging.footer``; "" clears
    it). Needs ``email.manage``; audited with whether one is set, not the text."""
    from enclave.messaging import footer

    authorize(actor, P.EMAIL_MANAGE, account_id=account.pk)
    cleaned = footer.clean_address(address)
    with transaction.atomic():
        # The account's own model (an outer layer's: not imported here).
        locked = type(account).objects.select_for_update().get(pk=account.pk)
        if locked.postal_address != cleaned:
            locked.postal_address = cleaned
            locked.save(update_fields=["postal_address"])
            audit.record(AuditEventType.POSTAL_ADDRESS_CHANGED, actor=actor,
                         account_id=account.pk, request=request, target_type="account",
                         target_id=account.pk, extra={"set": bool(cleaned)})
    account.postal_address = cleaned
    return cleaned
