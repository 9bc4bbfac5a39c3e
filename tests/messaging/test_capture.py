"""The worker job and the built-in capture transport (the embedded default): queued mail
is kept sealed instead of sent, the newest per account only, and erasure removes it."""

from __future__ import annotations

import dataclasses
import email
import email.policy

import pytest
from django.conf import settings

from enclave.messaging import tasks, transports
from enclave.messaging.models import Broadcast, CapturedMessage
from enclave.people.actions import do_erase_person
from tests.messaging.test_broadcasts import Setup
from tests.people.world import World


@pytest.fixture
def world(db) -> World:
    return World()


@pytest.fixture
def setup(world, local_dns) -> Setup:
    return Setup(world, local_dns)


def queue(setup, *emails):
    for address in emails:
        setup.person(address, first_name="Ann")
    return setup.queue(setup.broadcast())


@pytest.mark.django_db
class TestCapture:
    def test_the_job_captures_every_queued_message_and_finishes_the_broadcast(self, setup):
        broadcast = queue(setup, "ann@example.net", "bob@example.net")
        assert tasks.send_outbox() == {"sent": 2}
        assert CapturedMessage.objects.filter(broadcast=broadcast).count() == 2
        assert Broadcast.objects.get(pk=broadcast.pk).state == "sent"

    def test_a_captured_message_is_sealed_and_opens_to_the_mail(self, setup):
        queue(setup, "ann@example.net")
        tasks.send_outbox()
        stored = CapturedMessage.objects.values_list("raw", flat=True).get()
        assert stored.startswith("ek1:fields:")
        assert b"ann@example.net" not in stored.encode()
        mail = email.message_from_bytes(CapturedMessage.objects.get().raw,
                                        policy=email.policy.default)
        assert (mail["To"], mail["Subject"]) == ("ann@example.net", "Hi")

    def test_only_the_newest_are_kept_per_account(self, setup, monkeypatch):
        monkeypatch.setattr(transports, "CAPTURE_KEEP", 2)
        queue(setup, "a@example.net", "b@example.net", "c@example.net")
        tasks.send_outbox()
        assert CapturedMessage.objects.count() == 2

    def test_erasing_a_person_removes_their_captured_mail(self, setup, world):
        queue(setup, "ann@example.net")
        tasks.send_outbox()
        person = CapturedMessage.objects.get().person
        do_erase_person(person, actor=world.actor("owner"))
        assert not CapturedMessage.objects.exists()


class TestConfigured:
    def test_capture_is_the_embedded_default(self):
        assert isinstance(transports.configured(), transports.CaptureTransport)

    def test_smtp_settings_choose_the_smtp_transport(self):
        previous = settings.CONFIG
        settings.CONFIG = dataclasses.replace(previous, email_backend="smtp",
                                              email_host="smtp.example.com",
                                              email_port=2525, email_use_tls=True)
        try:
            chosen = transports.configured()
        finally:
            settings.CONFIG = previous
        assert isinstance(chosen, transports.SmtpTransport)
        assert (chosen.host, chosen.port, chosen.security) == ("smtp.example.com", 2525,
                                                               "starttls")
