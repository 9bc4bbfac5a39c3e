"""Messaging objects for the generated authorization tests."""

from __future__ import annotations

from enclave.messaging.actions import do_add_sender_domain


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
