"""Subscription topics, consent and suppression: state changes (one transaction and one
audit row each) and the reads the send pipeline will ask ("may we email this person
about this topic?").

* A person's state per topic is ``subscribed`` / ``unsubscribed`` / ``pending`` (no row:
  never asked). Every change appends a ``ConsentRecord``: when, how (``METHODS``), from
  which address, under which version of the topic's consent text.
* A topic with double opt-in (and every public form, whatever the topic) puts a new
  subscriber in ``pending`` and mails them a confirmation link (``tokens``); only a
  confirmed subscriber is ``subscribed``.
  Unconfirmed people are never mailed marketing (:func:`may_email`).
* The suppression list holds keyed MACs of addresses that are never mailed, whatever a
  segment says: added by hand, by complaints and by erasure (people's erasure hook).

Changes made by the person themselves (forms, confirmation links, the preference centre)
are system actions (``actor=None``): the token or form is the authority, and the audit
row names the method.
"""

from __future__ import annotations

import logging
import secrets

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize, authorize_system
from enclave.audience.models import (
    METHODS,
    PENDING,
    SUBSCRIBED,
    SUPPRESSION_REASONS,
    UNSUBSCRIBED,
    ConsentRecord,
    Subscription,
    Suppression,
    Topic,
)
from enclave.billing import entitlements
from enclave.core import audit, clock, mail, ratelimit
from enclave.core.models import AuditEventType
from enclave.people.actions import clean_email_address

P = Permission
log = logging.getLogger(__name__)
KEY_RE = r"^[a-z][a-z0-9_-]{0,39}$"
TOPIC_KEY_TAKEN = "A topic with this key exists."
# Methods a member or an API key may record; the others belong to the person themselves.
STAFF_METHODS = ("import", "api", "app", "complaint")


def _clean_topic(name, description, consent_text) -> dict:
    errors, out = {}, {}
    for field, value, limit, required in (("name", name, 100, True),
                                          ("description", description, 300, False),
                                          ("consent_text", consent_text, 1000, True)):
        if value is None:
            continue
        text = " ".join(str(value).split())
        if required and not text:
            errors[field] = "This is required."
        elif len(text) > limit or "\x00" in text:
            errors[field] = f"At most {limit} characters, no NUL."
        out[field] = text
    if errors:
        raise ValidationError(errors)
    return out


def do_create_topic(account, key: str, name: str, *, consent_text: str, description="",
                    double_opt_in: bool = True, actor: Principal, request=None) -> Topic:
    """A new topic (needs ``topics.manage``); ``key`` is its stable name in the API."""
    import re

    authorize(actor, P.TOPICS_MANAGE, account_id=account.pk)
    if not isinstance(key, str) or not re.fullmatch(KEY_RE, key):
        raise ValidationError({"key": "1–40 lower-case letters, digits, - and _; starting "
                                      "with a letter."})
    data = _clean_topic(name, description, consent_text)
    try:
        with transaction.atomic():
            topic = Topic.objects.create(account=account, key=key,
                                         double_opt_in=bool(double_opt_in),
                                         public_id=secrets.token_urlsafe(12), **data)
            audit.record(AuditEventType.TOPIC_CREATED, actor=actor, account_id=account.pk,
                         request=request, target_type="topic", target_id=topic.pk)
    except IntegrityError:
        raise ValidationError({"key": TOPIC_KEY_TAKEN}) from None
    return topic


def do_change_topic(topic: Topic, *, name=None, description=None, consent_text=None,
                    double_opt_in=None, actor: Principal, request=None) -> Topic:
    """Change a topic; a new consent text starts a new consent version (records keep the
    version they were given under). No change → no audit row."""
    authorize(actor, P.TOPICS_MANAGE, account_id=topic.account_id)
    data = _clean_topic(name, description, consent_text)
    if double_opt_in is not None:
        data["double_opt_in"] = bool(double_opt_in)
    with transaction.atomic():
        locked = Topic.objects.select_for_update().get(pk=topic.pk)
        changed = sorted(k for k, v in data.items() if getattr(locked, k) != v)
        if not changed:
            return locked
        for key in changed:
            setattr(locked, key, data[key])
        if "consent_text" in changed:
            locked.consent_version += 1
        locked.save()
        audit.record(AuditEventType.TOPIC_CHANGED, actor=actor, account_id=locked.account_id,
                     request=request, target_type="topic", target_id=locked.pk,
                     extra={"fields": changed, "consent_version": locked.consent_version})
    return locked


def _record(person, topic, status, method, ip, now) -> None:
    ConsentRecord.objects.create(
        account_id=person.account_id, person=person, topic=topic, status=status,
        method=method, ip=ip or None, at=now,
        consent_version=topic.consent_version if topic is not None else None)


def _set(person, topic, status, method, ip, *, actor, request) -> str | None:
    """Set ``person``'s state for ``topic`` inside the caller's transaction; returns the
    new status, or None when nothing changed."""
    now = clock.now()
    current = Subscription.objects.select_for_update().filter(person=person,
                                                               topic=topic).first()
    if current is not None and current.status == status:
        return None
    if current is None:
        Subscription.objects.create(person=person, topic=topic, status=status, changed_at=now)
    else:
        current.status, current.changed_at = status, now
        current.save(update_fields=["status", "changed_at"])
    _record(person, topic, status, method, ip, now)
    audit.record(AuditEventType.SUBSCRIPTION_CHANGED if method != "confirmation" else
                 AuditEventType.SUBSCRIPTION_CONFIRMED, actor=actor,
                 account_id=person.account_id, request=request, target_type="person",
                 target_id=person.pk,
                 extra={"topic": topic.pk, "status": status, "method": method})
    return status


def do_change_subscription(person, topic: Topic, subscribe: bool, *, method: str,
                           ip: str | None = None, actor: Principal | None, request=None) -> str:
    """Subscribe or unsubscribe ``person`` to ``topic``; returns the resulting status.

    A subscription to a double opt-in topic — or by a public form, to any topic — is
    ``pending`` until the person confirms by the mailed link (sent after commit). A
    member or key (``people.write``) records ``import``/``api``/``app``/``complaint``
    changes; the person's own (forms, links,
    preference centre) come with ``actor=None``."""
    if method not in METHODS:
        raise ValidationError({"method": f"One of {', '.join(METHODS)}."})
    if actor is None:
        authorize_system(actor)
    else:
        authorize(actor, P.PEOPLE_WRITE, account_id=person.account_id)
        if method not in STAFF_METHODS:
            raise ValidationError({"method": f"One of {', '.join(STAFF_METHODS)}."})
    if topic.account_id != person.account_id:
        raise ValidationError({"topic": "No such topic."})
    with transaction.atomic():
        current = Subscription.objects.select_for_update().filter(
            person=person, topic=topic).values_list("status", flat=True).first()
        if subscribe:
            # A public form always asks for confirmation, whatever the topic says: anyone
            # can post any address to it.
            confirm = topic.double_opt_in or method == "form"
            status = SUBSCRIBED if (not confirm or current == SUBSCRIBED) else PENDING
        else:
            status = UNSUBSCRIBED
        if status == PENDING and current != PENDING and person.email:
            # Another confirmation mail: at most "confirmation.person" per person and
            # topic, whoever asks (ratelimit.Limited before anything is written).
            ratelimit.require("confirmation.person", f"{person.pk}:{topic.pk}")
        if _set(person, topic, status, method, ip, actor=actor, request=request) == PENDING \
                and person.email:
            mail.enqueue("enclave.audience.send_confirmation", person_id=person.pk,
                         topic_id=topic.pk)
    return status


def do_confirm_subscription(person, topic: Topic, *, ip: str | None = None,
                            actor: Principal | None = None, request=None) -> bool:
    """The person followed their confirmation link: ``pending`` → ``subscribed``.
    Returns False when there was nothing pending (already confirmed, or unsubscribed
    since: an old link never re-subscribes anyone)."""
    authorize_system(actor)
    with transaction.atomic():
        current = Subscription.objects.select_for_update().filter(
            person=person, topic=topic).values_list("status", flat=True).first()
        if current != PENDING:
            return False
        _set(person, topic, SUBSCRIBED, "confirmation", ip, actor=None, request=request)
    return True


def do_unsubscribe_all(person, *, method: str, ip: str | None = None,
                       actor: Principal | None = None, request=None) -> int:
    """Unsubscribe ``person`` from every topic they are subscribed or pending to, and
    record one "all topics" consent record. Returns how many changed."""
    if actor is None:
        authorize_system(actor)
    else:
        authorize(actor, P.PEOPLE_WRITE, account_id=person.account_id)
    with transaction.atomic():
        topics = list(Topic.objects.filter(
            account_id=person.account_id,
            pk__in=Subscription.objects.filter(person=person, status__in=(
                SUBSCRIBED, PENDING)).values("topic_id")))
        changed = sum(1 for topic in topics
                      if _set(person, topic, UNSUBSCRIBED, method, ip, actor=actor,
                              request=request))
        _record(person, None, UNSUBSCRIBED, method, ip, clock.now())
    return changed


class FormError(ValueError):
    """A subscribe form that cannot be accepted; ``str()`` is safe to show."""


class AddressLimited(Exception):
    """Too many subscribe requests for one address (each may send an email)."""


def do_subscribe_by_form(topic: Topic, email: str, *, ip: str | None = None,
                         request=None):
    """A public form's subscription (system action): the person with this address is
    found or created, then ``pending`` with a confirmation email (forms always confirm).
    A suppressed address is neither stored nor mailed (returns None). The same answer
    whether or not the address was known or suppressed."""
    from enclave.people.actions import clean_email_address, do_capture_person

    email = str(email or "").strip()
    if len(email) > 254 or "\x00" in email:
        raise FormError("Enter a valid email address.")
    try:
        email = clean_email_address(email)
    except ValidationError as exc:
        raise FormError(" ".join(exc.messages)) from None
    # Counted per account and valid address only: nobody locks an address out of every
    # account's forms, and junk does not count against a real one.
    if not ratelimit.hit("subscribe.address", f"{topic.account_id}:{email}").allowed:
        raise AddressLimited()
    if is_suppressed(topic.account_id, email):
        return None  # never mailed again, never stored again; the same answer as usual
    try:
        with transaction.atomic():
            person = do_capture_person(topic.account, email, source="form", request=request)
            do_change_subscription(person, topic, True, method="form", ip=ip, actor=None,
                                   request=request)
    except ratelimit.Limited:
        raise AddressLimited() from None
    except entitlements.PlanLimitReached:
        # The account's plan holds no more people: nothing stored, nobody mailed — and
        # the same answer as usual (whether the address was known must not show). The
        # owners see the limit reached on their billing page.
        log.warning("subscribe form over the plan's people limit",
                    extra={"account": topic.account_id})
        return None
    return person


def do_request_erasure(person, *, ip: str | None = None, actor: Principal | None = None,
                       request=None) -> None:
    """The person asked, from the preference centre, to be erased: unsubscribed from
    everything at once and the request audited for the account's team, who erase (an
    emailed link is not proof enough of identity to erase on its own)."""
    authorize_system(actor)
    with transaction.atomic():
        do_unsubscribe_all(person, method="preference_centre", ip=ip, actor=None,
                           request=request)
        audit.record(AuditEventType.ERASURE_REQUESTED, actor=None,
                     account_id=person.account_id, request=request, target_type="person",
                     target_id=person.pk)


# --- suppression ---

def normalise_email(email: str) -> bytes:
    return email.strip().lower().encode()


def _macs(email: str) -> list[tuple[int, str]]:
    from enclave.keys import api as keys

    return [(version, tag.hex()) for version, tag in keys.mac_all("tokens",
                                                                  normalise_email(email))]


def is_suppressed(account_id: int, email: str) -> bool:
    """Whether ``email`` is on the account's suppression list (under any key version)."""
    return email in suppressed_among(account_id, [email])


def suppressed_among(account_id: int, emails) -> set[str]:
    """Which of ``emails`` are on the account's suppression list — one query for many
    (the send pipeline checks a whole batch)."""
    from django.db.models import Q

    from enclave.keys import api as keys

    emails = [email for email in set(emails) if email and email.strip()]
    tags = {(version, tag.hex()): email for email, macs in zip(
        emails, keys.mac_all_many("tokens", [normalise_email(e) for e in emails]),
        strict=True) for version, tag in macs}
    if not tags:
        return set()
    query = Q()
    for version in {version for version, _ in tags}:
        query |= Q(mac_version=version,
                   email_mac__in=[tag for v, tag in tags if v == version])
    found = Suppression.objects.filter(query, account_id=account_id) \
        .values_list("mac_version", "email_mac")
    return {tags[pair] for pair in found}


def suppress(account_id: int, email: str, reason: str) -> bool:
    """Add ``email`` inside the caller's transaction (its action audits). True if new."""
    from enclave.keys import api as keys

    if reason not in SUPPRESSION_REASONS:
        raise ValidationError({"reason": f"One of {', '.join(SUPPRESSION_REASONS)}."})
    if not email or not email.strip() or is_suppressed(account_id, email):
        return False
    version, tag = keys.mac("tokens", normalise_email(email))
    Suppression.objects.create(account_id=account_id, mac_version=version,
                               email_mac=tag.hex(), reason=reason)
    return True


def do_suppress_address(account, email: str, *, reason: str = "manual",
                        actor: Principal | None, request=None) -> bool:
    """Never mail ``email`` in ``account`` again (needs ``people.write``; the system for
    complaints). Audited without the address. True when it was not suppressed yet."""
    if actor is None:
        authorize_system(actor)
    else:
        authorize(actor, P.PEOPLE_WRITE, account_id=account.pk)
    email = clean_email_address(email)
    with transaction.atomic():
        added = suppress(account.pk, email, reason)
        if added:
            audit.record(AuditEventType.ADDRESS_SUPPRESSED, actor=actor,
                         account_id=account.pk, request=request, target_type="account",
                         target_id=account.pk, extra={"reason": reason})
    return added


def count_lookup(actor: Principal) -> None:
    """One suppression look-up by ``actor`` (a member or a key) against
    ``suppression.lookup``; ratelimit.Limited past it."""
    from enclave.core import ratelimit

    who = f"key:{actor.api_key_public_id}" if actor.is_api_key else f"member:{actor.member_id}"
    ratelimit.require("suppression.lookup", f"{actor.account_id}:{who}")


def do_unsuppress_address(account, email: str, *, actor: Principal, request=None) -> bool:
    """Take ``email`` off the list (needs ``people.write``). An address suppressed by an
    erasure stays: the person asked to be forgotten, and that includes not being mailed.
    True when an entry was removed. Its answer tells whether the address was suppressed
    (or erased), so it counts as a look-up (:func:`count_lookup`)."""
    from django.db.models import Q

    authorize(actor, P.PEOPLE_WRITE, account_id=account.pk)
    email = clean_email_address(email)
    count_lookup(actor)
    query = Q()
    for version, tag in _macs(email):
        query |= Q(mac_version=version, email_mac=tag)
    if not query:
        return False
    with transaction.atomic():
        rows = Suppression.objects.select_for_update().filter(query, account_id=account.pk)
        if any(row.reason == "erasure" for row in rows):
            raise ValidationError({"email": "This address was suppressed when its person "
                                            "was erased; it stays suppressed."})
        removed, _ = rows.delete()
        if removed:
            audit.record(AuditEventType.ADDRESS_UNSUPPRESSED, actor=actor,
                         account_id=account.pk, request=request, target_type="account",
                         target_id=account.pk)
    return bool(removed)


def on_person_erased(account_id: int, email: str) -> None:
    """People's erasure hook (inside the erasure's transaction): the erased address is
    suppressed, so no segment or import can mail it again."""
    suppress(account_id, email, "erasure")


def may_email(person, topic: Topic) -> bool:
    """The send pipeline's question: subscribed (confirmed) to ``topic``, not archived,
    has an address, and the address is not suppressed."""
    if not person.email or person.archived_at is not None or topic.account_id != \
            person.account_id:
        return False
    if not Subscription.objects.filter(person=person, topic=topic,
                                       status=SUBSCRIBED).exists():
        return False
    return not is_suppressed(person.account_id, person.email)


def do_send_confirmation(person_id: int, topic_id: int, *, actor=None) -> None:
    """The worker's half of double opt-in (system only): mail the confirmation link while
    the subscription is still pending (an unsubscribe since, or an erasure, sends
    nothing). The link carries a signed token, never stored."""
    from django.conf import settings

    from enclave.audience import tokens
    from enclave.people.models import Person

    authorize_system(actor)
    person = Person.objects.filter(pk=person_id).first()
    topic = Topic.objects.filter(pk=topic_id).select_related("account").first()
    if person is None or topic is None or not person.email or not Subscription.objects \
            .filter(person=person, topic=topic, status=PENDING).exists() or \
            is_suppressed(person.account_id, person.email):
        return
    token = tokens.make(person, tokens.CONFIRMATION, topic_id=topic.pk)
    link = f"{settings.CONFIG.public_url}/confirm/{token}"
    mail.send(person.email, f"Confirm your subscription: {topic.name}",
              f"Someone (we hope you) asked to receive \"{topic.name}\" from "
              f"{topic.account.name}.\n\nConfirm within "
              f"{tokens.LIFETIME[tokens.CONFIRMATION].days} days: {link}\n\n"
              "If this was not you, ignore this email: nothing will be sent to you.\n\n"
              f"Your preferences, at any time: {preferences_url(person)}")


def preferences_url(person) -> str:
    """The person's preference centre link (for messages sent to them)."""
    from django.conf import settings

    from enclave.audience import tokens

    token = tokens.make(person, tokens.PREFERENCES)
    return f"{settings.CONFIG.public_url}/preferences/{token}"


def count_suppression_macs(purpose: str, version: int) -> int:
    """Suppressions made under ``purpose`` v``version`` (the keyring's reference count)."""
    if purpose != "tokens":
        return 0
    return Suppression.objects.filter(mac_version=version).count()
