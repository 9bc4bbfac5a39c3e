"""Messaging objects for the generated authorization tests."""

from __future__ import annotations

from enclave.messaging.actions import do_add_sender_domain, do_create_template
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
