"""The worker job and the built-in capture transport (the embedded default): queued mail
is kept sealed instead of sent, the newest per account only, and erasure removes it."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re

import pytest
from django.conf import settings

from enclave.messaging import actions, tasks, transports
from enclave.messaging.models import Broadcast, CapturedMessage
from enclave.people.actions import do_erase_person
from tests.messaging.test_broadcasts import Setup


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


def page(client, url):
    response = client.get(url)
    return response, response.content.decode()


@pytest.mark.django_db
class TestCapturedMailPages:
    def test_the_list_shows_each_captured_message_newest_first(self, setup, world):
        queue(setup, "ann@example.net")
        tasks.send_outbox()
        response, text = page(world.client("owner"), "/app/captured/")
        assert response.status_code == 200
        assert "ann@example.net" in text
        assert "June news" in text  # the broadcast it belongs to

    def test_a_message_shows_its_headers_and_personalised_text(self, setup, world):
        queue(setup, "ann@example.net")
        tasks.send_outbox()
        row = CapturedMessage.objects.get()
        response, text = page(world.client("owner"), f"/app/captured/{row.row_id}/")
        assert response.status_code == 200
        assert "Hi Ann" in text
        assert "List-Unsubscribe-Post" in text
        assert "(DKIM-signed)" in text

    def test_the_persons_own_links_show_without_their_token(self, setup, world):
        from enclave.messaging.captured import HIDDEN_TOKEN

        setup.template = actions.do_change_template(
            setup.template, source="<a href='{{ unsubscribe_url }}'>u</a>"
                                   "<a href='{{ preferences_url }}'>p</a>",
            actor=setup.owner)
        queue(setup, "ann@example.net")
        tasks.send_outbox()
        row = CapturedMessage.objects.get()
        client = world.client("owner")
        pages = client.get(f"/app/captured/{row.row_id}/").content.decode() + \
            client.get(f"/app/captured/{row.row_id}/html").content.decode()
        assert f"/unsubscribe/{HIDDEN_TOKEN}" in pages
        assert f"/preferences/{HIDDEN_TOKEN}" in pages
        assert not re.search(r"/(unsubscribe|preferences)/(?!\(token)", pages)

    def test_a_page_number_in_other_digits_is_the_first_page(self, world):
        assert world.client("owner").get("/app/captured/?page=²").status_code == 200

    def test_the_html_part_is_a_sandboxed_document_without_active_head(self, world):
        from enclave.core import headers
        from tests.messaging.world import _captured_mail

        row = CapturedMessage(account=world.account, person=world.person)
        row.raw = _captured_mail("a@example.net").replace(
            b"<p>", b"<meta http-equiv=refresh content='0;url=https://evil.example'><p>")
        row.save()
        response, text = page(world.client("owner"), f"/app/captured/{row.row_id}/html")
        assert response["Content-Security-Policy"] == headers.SANDBOXED_DOCUMENT_CSP
        assert "evil.example" not in text
        assert world.person.first_name in text

    def test_a_message_whose_body_was_anonymised_opens_empty(self, world):
        row = CapturedMessage.objects.create(account=world.account)
        response, text = page(world.client("owner"), f"/app/captured/{row.row_id}/")
        assert response.status_code == 200
        assert "(no subject)" in text

    def test_an_id_that_is_not_a_row_id_is_404(self, world):
        assert world.client("owner").get("/app/captured/12/").status_code == 404

    def test_pages_of_fifty_link_to_older_and_newer(self, world):
        from tests.messaging.world import _captured_mail

        for _ in range(51):
            row = CapturedMessage(account=world.account)
            row.raw = _captured_mail("a@example.net")
            row.save()
        client = world.client("owner")
        first, second = page(client, "/app/captured/")[1], page(client, "/app/captured/?page=2")[1]
        assert ('rel="next"' in first, 'rel="prev"' in first) == (True, False)
        assert ('rel="next"' in second, 'rel="prev"' in second) == (False, True)
        links = re.compile(r'href="/app/captured/[0-9a-f-]{36}/"')
        assert (len(links.findall(first)), len(links.findall(second))) == (50, 1)
        assert links.findall(page(client, "/app/captured/?page=x")[1]) == \
            links.findall(first)

    def test_a_role_that_sees_personal_data_masked_is_refused(self, world):
        assert world.client("analyst").get("/app/captured/").status_code == 403

    def test_a_custom_role_with_people_write_but_not_unmask_is_refused(self, world):
        from enclave.accounts.actions import do_change_role, do_save_custom_role

        role = do_save_custom_role(world.account, "Writers",
                                   ["people.write", "email.read"], actor=world.actor("owner"))
        do_change_role(world.membership("viewer"), role, actor=world.actor("owner"))
        assert world.client("viewer").get("/app/captured/").status_code == 403


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
