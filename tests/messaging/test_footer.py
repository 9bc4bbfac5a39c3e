"""The postal-address footer: every broadcast, preview and test ends with the account's
address, escaped in the HTML part; setting it needs email.manage and is audited without
its text."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from enclave.access.principal import NotAuthorized
from enclave.core.models import AuditEvent, AuditEventType
from enclave.messaging import access, actions, footer, pipeline
from enclave.messaging.models import CapturedMessage
from enclave.messaging.rendering import Rendered
from tests.messaging.test_pipeline import personalised, queue, received

ADDRESS = "Acme Outfitters Ltd\n1 Harbour Street\nBristol BS1 4XX"


@pytest.fixture
def setup(world, local_dns):
    return personalised(world, local_dns)


class TestAdd:
    def test_the_address_ends_both_parts_inside_the_body(self):
        out = footer.add(Rendered("Hi", "<html><body><p>Hi</p></body></html>", "Hi\n"),
                         ADDRESS)
        assert out.text == "Hi\n\n-- \n" + ADDRESS + "\n"
        assert out.html.endswith("1 Harbour Street<br>Bristol BS1 4XX</p></body></html>")

    def test_markup_in_the_address_is_escaped(self):
        out = footer.add(Rendered("Hi", "<p>Hi</p>", "Hi"), "<script>alert(1)</script>")
        assert "<script>" not in out.html
        assert "&lt;script&gt;" in out.html

    def test_no_address_changes_nothing(self):
        rendered = Rendered("Hi", "<p>Hi</p>", "Hi")
        assert footer.add(rendered, "") is rendered

    @pytest.mark.parametrize("raw", ["\n".join("line" for _ in range(6)), "x" * 301,
                                     "a\x00b", "a\u202eb", 42, None])
    def test_an_address_out_of_bounds_is_refused(self, raw):
        with pytest.raises(ValidationError):
            footer.clean_address(raw)

    def test_lines_are_tidied(self):
        assert footer.clean_address("  Acme \r\n\r\n  1   Harbour St  ") == "Acme\n1 Harbour St"


@pytest.mark.django_db
class TestEveryEmailCarriesIt:
    def test_a_broadcast_ends_with_the_address(self, setup, sink, smtp):
        actions.do_set_postal_address(setup.world.account, ADDRESS, actor=setup.owner)
        queue(setup, "ann@example.net")
        pipeline.run_once(smtp)
        mail = received(sink)["ann@example.net"]
        assert "1 Harbour Street" in mail.get_body(("plain",)).get_content()
        assert "1 Harbour Street<br>" in mail.get_body(("html",)).get_content()

    def test_previews_and_tests_show_it(self, setup):
        actions.do_set_postal_address(setup.world.account, ADDRESS, actor=setup.owner)
        owner = setup.world.actor("owner")  # the account as it is now
        assert "Bristol BS1 4XX" in access.preview(owner, setup.template).text
        actions.do_send_test_broadcast(setup.broadcast(), actor=owner)
        assert b"Bristol BS1 4XX" in CapturedMessage.objects.get().raw

    def test_setting_it_is_audited_without_its_text(self, setup):
        actions.do_set_postal_address(setup.world.account, ADDRESS, actor=setup.owner)
        actions.do_set_postal_address(setup.world.account, "", actor=setup.owner)
        rows = AuditEvent.objects.filter(event_type=AuditEventType.POSTAL_ADDRESS_CHANGED)
        assert list(rows.values_list("extra_data", flat=True)) == [{"set": True},
                                                                   {"set": False}]

    def test_a_role_without_email_manage_cannot_set_it(self, setup):
        with pytest.raises(NotAuthorized):
            actions.do_set_postal_address(setup.world.account, ADDRESS,
                                          actor=setup.world.actor("analyst"))

    def test_the_sender_page_sets_it_and_says_what_is_wrong(self, setup):
        client = setup.world.client("owner")
        assert client.post("/app/senders/address/",
                           {"postal_address": ADDRESS}).status_code == 302
        assert "1 Harbour Street" in client.get("/app/senders/").content.decode()
        refused = client.post("/app/senders/address/", {"postal_address": "x" * 301})
        assert refused.status_code == 422
        assert footer.ADDRESS_RULE in refused.content.decode()
