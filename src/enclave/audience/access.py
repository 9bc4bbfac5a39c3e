"""Tenant-scoped, permission-checked reads of segments.

Another account's segment looks exactly like a missing one (Http404; named inside a
request body, ``MissingReference``); a missing permission raises
``access.principal.NotAuthorized`` (403).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize
from enclave.audience import membership, rules
from enclave.audience.models import Segment
from enclave.core.validation import MissingReference


def segments_of(principal: Principal):
    """The account's segments, by name (needs ``segments.read``)."""
    authorize(principal, Permission.SEGMENTS_READ)
    return Segment.objects.filter(account_id=principal.account_id).order_by("name", "pk")


def access_segment(principal: Principal, segment_id, *, for_write: bool = False) -> Segment:
    """One segment of the principal's account; Http404 if missing or another account's."""
    authorize(principal, Permission.SEGMENTS_MANAGE if for_write
              else Permission.SEGMENTS_READ)
    try:
        segment_id = int(segment_id)
    except (TypeError, ValueError):
        raise Http404("No such segment.") from None
    segment = Segment.objects.filter(account_id=principal.account_id, pk=segment_id).first()
    if segment is None:
        raise Http404("No such segment.")
    return segment


def checked_rules(data, *, actor: Principal, segment_id: int | None = None) -> rules.Rule:
    """``data`` as a rule tree usable by ``actor`` in its account; ValidationError keyed
    ``rules`` otherwise (unknown field, wrong operator, a field the actor does not see in
    full, a missing segment, a cycle, too deep or too many conditions)."""
    try:
        rule = rules.parse(data)
        rules.check(rule, membership.context(actor.account_id, actor.perms),
                    segment_id=segment_id)
    except (rules.MissingSegment, rules.MissingTopic) as exc:
        raise MissingReference({"rules": str(exc)}) from None
    except rules.RuleError as exc:
        raise ValidationError({"rules": str(exc)}) from None
    return rule


UNUSABLE_RULES = "This segment's rules cannot be evaluated; change them first."


def segment_people(principal: Principal, segment: Segment):
    """The people in ``segment`` now (needs ``segments.read``); render them through the
    visibility formatter. ValidationError keyed ``rules`` when the stored rules cannot be
    evaluated (only an anonymised restore stores such a tree)."""
    authorize(principal, Permission.SEGMENTS_READ, account_id=segment.account_id)
    try:
        return membership.members_of(segment, membership.context(segment.account_id,
                                                                 principal.perms))
    except rules.RuleError:
        raise ValidationError({"rules": UNUSABLE_RULES}) from None


def matching_people(principal: Principal, rule_data):
    """The people an unsaved rule tree matches now (a preview: needs ``segments.manage``,
    and the tree must be one the principal could save)."""
    authorize(principal, Permission.SEGMENTS_MANAGE)
    rule = checked_rules(rule_data, actor=principal)
    return membership.people_in(rule, membership.context(principal.account_id,
                                                         principal.perms))


def topics_of(principal: Principal):
    """The account's topics (any member or key of the account may read them)."""
    from enclave.audience.models import Topic

    return Topic.objects.filter(account_id=principal.account_id).order_by("key")


def access_topic(principal: Principal, topic_id, *, for_write: bool = False):
    """One topic of the principal's account; Http404 if missing or another account's.
    Changing it needs ``topics.manage``."""
    from enclave.audience.models import Topic

    if for_write:
        authorize(principal, Permission.TOPICS_MANAGE)
    try:
        topic_id = int(topic_id)
    except (TypeError, ValueError):
        raise Http404("No such topic.") from None
    topic = Topic.objects.filter(account_id=principal.account_id, pk=topic_id).first()
    if topic is None:
        raise Http404("No such topic.")
    return topic


def topic_counts(principal: Principal, topic) -> dict[str, int]:
    """How many of the account's unarchived people are subscribed, pending and
    unsubscribed for ``topic`` (aggregates: any member of the account)."""
    from django.db.models import Count

    from enclave.audience.models import STATUSES, Subscription

    found = dict(Subscription.objects.filter(topic=topic, topic__account_id=principal.account_id,
                                             person__archived_at__isnull=True)
                 .values_list("status").annotate(n=Count("pk")).order_by("status"))
    return {status: found.get(status, 0) for status in STATUSES}


def topic_by_key(principal: Principal, key: str):
    """The account's topic with this key (named in a request body); MissingReference
    otherwise."""
    from enclave.audience.models import Topic

    topic = Topic.objects.filter(account_id=principal.account_id, key=str(key)).first()
    if topic is None:
        raise MissingReference({"topic": "No such topic."})
    return topic


def subscriptions_of(principal: Principal, person) -> list:
    """A person's subscriptions (needs ``people.read``)."""
    from enclave.audience.models import Subscription

    authorize(principal, Permission.PEOPLE_READ, account_id=person.account_id)
    return list(Subscription.objects.filter(person=person).select_related("topic")
                .order_by("topic__key"))


def consent_history(principal: Principal, person) -> list:
    """A person's consent records, oldest first (needs ``people.read``)."""
    from enclave.audience.models import ConsentRecord

    authorize(principal, Permission.PEOPLE_READ, account_id=person.account_id)
    return list(ConsentRecord.objects.filter(person=person).select_related("topic")
                .order_by("at", "pk"))


def consent_rows(principal: Principal, person) -> list[dict]:
    """A person's consent history as ``principal`` may see it, oldest first: the address
    each change came from shown, masked or left out as the ``ip`` field is for them."""
    from enclave.people import visibility

    ip_level = visibility.level(principal.perms, visibility.FIELD_CLASSES["ip"])
    return [{
        "at": row.at, "topic": row.topic.key if row.topic else None, "status": row.status,
        "method": row.method, "consent_version": row.consent_version,
        "ip": None if ip_level == visibility.HIDDEN or row.ip is None else (
            row.ip if ip_level == visibility.VISIBLE else visibility.MASK),
    } for row in consent_history(principal, person)]


def suppression_counts(principal: Principal) -> dict[str, int]:
    """How many addresses the account's suppression list holds, by reason (the list
    itself is keyed hashes: there is nothing else to show). Needs ``people.write``."""
    from django.db.models import Count

    from enclave.audience.models import Suppression

    authorize(principal, Permission.PEOPLE_WRITE)
    return dict(Suppression.objects.filter(account_id=principal.account_id)
                .values_list("reason").annotate(n=Count("pk")).order_by("reason"))


def is_suppressed(principal: Principal, email: str) -> bool:
    """Whether ``email`` is on the account's suppression list. Answering says something
    about an address given in full, so it needs what seeing an email in full needs
    (``people.write``, the registry's permission for the check), and is counted against
    the ``suppression.lookup`` limit (ratelimit.Limited past it)."""
    from enclave.audience import subscriptions
    from enclave.people.actions import clean_email_address

    authorize(principal, Permission.PEOPLE_WRITE)
    email = clean_email_address(email)
    subscriptions.count_lookup(principal)
    return subscriptions.is_suppressed(principal.account_id, email)


def account_counts(principal: Principal) -> dict[str, int]:
    """Aggregates any member of the account sees on the home page: unarchived people,
    people subscribed to at least one topic, segments."""
    from enclave.audience.models import SUBSCRIBED, Subscription
    from enclave.people.access import count_people

    account_id = principal.account_id
    return {
        "people": count_people(principal),
        "subscribed": Subscription.objects.filter(
            topic__account_id=account_id, status=SUBSCRIBED,
            person__archived_at__isnull=True).values("person_id").distinct().count(),
        "segments": Segment.objects.filter(account_id=account_id).count(),
    }
