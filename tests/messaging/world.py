"""Messaging objects for the generated authorization tests."""

from __future__ import annotations

from enclave.messaging.actions import (
    do_add_sender_domain,
    do_create_broadcast,
    do_create_template,
)
from tests.people.world import PERSON

# A template that shows every personal field (the previews' visibility cases).
EVERY_FIELD = "\n".join(f"<p>{field}: {{{{ person.{field} }}}}</p>" for field in PERSON)


def templates(world) -> tuple:
    """(the world's account's, the other account's) template showing every personal
    field, made on first use (compiling runs in a child process)."""
    if not hasattr(world, "templates"):
        world.templates = (
            do_create_template(world.account, "Every field", "html", "Hi", EVERY_FIELD,
                               actor=world.actor("owner")),
            do_create_template(world.other, "Theirs", "html", "Hi", EVERY_FIELD,
                               actor=world.other_actor()))
    return world.templates


def sender_domains(world) -> tuple:
    """(the world's account's, the other account's) sender domain, made on first use:
    each makes an RSA key, so tests that never reach a sender domain do not pay for it."""
    if not hasattr(world, "senders"):
        world.senders = (
            do_add_sender_domain(world.account, "news.acme.example",
                                 actor=world.actor("owner")),
            do_add_sender_domain(world.other, "news.other.example",
                                 actor=world.other_actor()))
    return world.senders


def broadcasts(world) -> tuple:
    """(the world's account's, the other account's) draft broadcast to its "news" topic
    (``world.topic`` / ``world.other_topic``, which the generated tests' prepare makes),
    made on first use."""
    if not hasattr(world, "drafts"):
        (own_template, other_template), (own_sender, other_sender) = (
            templates(world), sender_domains(world))
        world.drafts = (
            do_create_broadcast(world.account, "June news", template=own_template,
                                sender=own_sender, from_local="news",
                                topics=[world.topic.pk], actor=world.actor("owner")),
            do_create_broadcast(world.other, "Theirs", template=other_template,
                                sender=other_sender, from_local="news",
                                topics=[world.other_topic.pk], actor=world.other_actor()))
    return world.drafts


def broadcast_payload(world) -> dict:
    """A valid body for drafting a broadcast in the world's account."""
    return {"name": "New", "template": templates(world)[0].pk,
            "sender": sender_domains(world)[0].pk, "from_local": "news",
            "topics": [world.topic.pk]}


def _captured_mail(to: str) -> bytes:
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["From"], mail["To"] = "news@news.acme.example", to
    mail["Subject"] = "Hi " + " · ".join(PERSON.values())
    mail.set_content(" · ".join(PERSON.values()))
    mail.add_alternative("<p>" + " · ".join(PERSON.values()) + "</p>", subtype="html")
    return mail.as_bytes()


def captured(world) -> tuple:
    """(the world's account's, the other account's) captured message to its person, every
    personal field in its subject and both parts (cheap: made by prepare)."""
    from enclave.messaging.models import CapturedMessage

    if not hasattr(world, "captured"):
        made = []
        for account, person in ((world.account, world.person),
                                (world.other, world.other_person)):
            row = CapturedMessage(account=account, person=person)
            row.raw = _captured_mail(person.email)
            row.save()
            made.append(row)
        world.captured = tuple(made)
    return world.captured


def transactional_messages(world) -> tuple:
    """(the world's account's, the other account's) queued transactional message to its
    person. Written directly: the world's sender domains are unverified, so the action
    would refuse; these rows stand for ones the API queued earlier."""
    from enclave.messaging.models import TransactionalMessage

    if not hasattr(world, "transactional"):
        world.transactional = tuple(
            TransactionalMessage.objects.create(
                account=account, template=template, sender=sender, from_local="orders",
                person=person, data="{}", key_mac=f"{n:064x}", request_mac="0" * 64,
                mac_version=1)
            for n, (account, person, template, sender) in enumerate(zip(
                (world.account, world.other), (world.person, world.other_person),
                templates(world), sender_domains(world), strict=True)))
    return world.transactional
