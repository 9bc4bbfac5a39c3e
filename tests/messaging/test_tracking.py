"""Open and click tracking: off unless a broadcast asks; only the template's literal https
links are rewritten; tokens hold no personal data and are keyed; a click goes only to the
broadcast's own link; the first open and the first click per link are recorded once."""

from __future__ import annotations

import re

import pytest

from enclave.messaging import actions, pipeline, tracking
from enclave.messaging.models import Broadcast, DeliveryEvent, OutboxMessage
from enclave.people.actions import do_erase_person
from enclave.people.models import Person
from tests.conftest import HttpsClient
from tests.messaging.test_broadcasts import Setup
from tests.messaging.test_pipeline import received

SOURCE = ('<html><body><p>Hi {{ person.first_name }}</p>'
          '<a href="https://shop.example/sale?a=1&b=2">Sale</a> '
          '<a class="x" href="https://shop.example/sale?a=1&b=2">Again</a> '
          '<a href="https://shop.example/p/{{ person.first_name }}">Yours</a> '
          '<a href="http://plain.example/">Plain</a> '
          '<div data-href="https://shop.example/sale?a=1&b=2">data</div>'
          '<pre>&lt;a href="https://shop.example/sale?a=1&amp;b=2"&gt;</pre>'
          '<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>')


@pytest.fixture
def setup(world, local_dns) -> Setup:
    made = Setup(world, local_dns)
    made.template = actions.do_change_template(made.template, source=SOURCE,
                                               actor=made.owner)
    return made


def sent_html(setup, sink, smtp, *, opens=False, clicks=False) -> tuple[str, OutboxMessage]:
    setup.person("ann@example.net", first_name="Ann")
    broadcast = actions.do_create_broadcast(
        setup.world.account, "Tracked", template=setup.template, sender=setup.sender,
        from_local="news", topics=[setup.topic.pk], track_opens=opens,
        track_clicks=clicks, actor=setup.owner)
    setup.queue(broadcast)
    assert pipeline.run_once(smtp) == {"sent": 1}
    mail = received(sink)["ann@example.net"]
    return mail.get_body(("html",)).get_content(), OutboxMessage.objects.get()


def tokens(html: str, kind: str) -> list[str]:
    return re.findall(rf"/t/{kind}/([A-Za-z0-9_=-]+)", html)


def get(path: str):
    return HttpsClient().get(path)


@pytest.mark.django_db
class TestRewriting:
    def test_nothing_is_tracked_unless_asked(self, setup, sink, smtp):
        html, _ = sent_html(setup, sink, smtp)
        assert "/t/" not in html
        assert 'href="https://shop.example/sale?a=1&amp;b=2"' in html

    def test_only_the_templates_literal_https_links_are_rewritten(self, setup, sink, smtp):
        html, row = sent_html(setup, sink, smtp, clicks=True)
        assert Broadcast.objects.get(pk=row.broadcast_id).tracked_links == [
            "https://shop.example/sale?a=1&amp;b=2"]
        assert len(tokens(html, "c")) == 2  # the same link twice
        assert 'href="https://shop.example/p/Ann"' in html  # personalised: as it was
        # Not links: an attribute that is not href, text that shows one.
        assert 'data-href="https://shop.example/sale?a=1&amp;b=2"' in html
        assert '<pre>&lt;a href="https://shop.example/sale?a=1&amp;b=2"' in html
        assert 'href="http://plain.example/"' in html
        assert "/unsubscribe/" in html
        assert "/t/o/" not in html

    def test_the_open_pixel_goes_before_the_end_of_the_body(self, setup, sink, smtp):
        html, _ = sent_html(setup, sink, smtp, opens=True)
        assert len(tokens(html, "o")) == 1
        assert html.index("/t/o/") < html.lower().rindex("</body>")
        assert "shop.example/sale" in html  # links untouched without click tracking

    def test_a_token_names_ids_only(self, setup, sink, smtp):
        html, row = sent_html(setup, sink, smtp, opens=True, clicks=True)
        for token in tokens(html, "c") + tokens(html, "o"):
            assert token.startswith(f"{row.broadcast_id}-{row.pk}-")
            assert "ann" not in token.lower()


@pytest.mark.django_db
class TestRecording:
    def test_a_click_goes_to_the_link_and_is_recorded_once(self, setup, sink, smtp):
        html, row = sent_html(setup, sink, smtp, clicks=True)
        first = get(f"/t/c/{tokens(html, 'c')[0]}")
        again = get(f"/t/c/{tokens(html, 'c')[1]}")
        assert (first.status_code, first["Location"]) == (
            302, "https://shop.example/sale?a=1&b=2")
        assert again.status_code == 302
        assert list(DeliveryEvent.objects.values_list("kind", "person_id", "esp")) == [
            ("clicked", row.person_id, "enclave")]
        assert pipeline.progress(Broadcast.objects.get(pk=row.broadcast_id))["clicked"] == 1

    def test_an_open_is_recorded_once_and_answered_with_a_pixel(self, setup, sink, smtp):
        html, row = sent_html(setup, sink, smtp, opens=True)
        responses = [get(f"/t/o/{tokens(html, 'o')[0]}") for _ in range(2)]
        assert [(r.status_code, r["Content-Type"]) for r in responses] == [
            (200, "image/gif")] * 2
        assert responses[0].content == tracking.PIXEL
        assert DeliveryEvent.objects.filter(kind="opened").count() == 1
        assert pipeline.progress(Broadcast.objects.get(pk=row.broadcast_id))["opened"] == 1

    def test_forged_tokens_redirect_nowhere_and_record_nothing(self, setup, sink, smtp):
        html, _ = sent_html(setup, sink, smtp, opens=True, clicks=True)
        good = tokens(html, "c")[0]
        b, r, n, v, mac = good.split("-", 4)
        forged = [f"{b}-{r}-{n}-{v}-{mac[:-2]}AA", f"{b}-{int(r) + 1}-{n}-{v}-{mac}",
                  f"{int(b) + 1}-{r}-{n}-{v}-{mac}", f"{b}-{r}-1-{v}-{mac}",
                  f"{b}-{r}-{n}-99-{mac}", f"{b}-{r}-o-{v}-{mac}", "x", "1-2-3-4-%%%"]
        assert [get(f"/t/c/{token}").status_code for token in forged] == [404] * len(forged)
        get(f"/t/o/{b}-{r}-o-{v}-{mac}")  # a click token's MAC is no open's
        assert DeliveryEvent.objects.count() == 0

    def test_a_click_after_the_person_was_erased_still_goes_but_records_nothing(
            self, setup, sink, smtp, world):
        html, row = sent_html(setup, sink, smtp, clicks=True)
        do_erase_person(Person.objects.get(pk=row.person_id), actor=world.actor("owner"))
        response = get(f"/t/c/{tokens(html, 'c')[0]}")
        assert (response.status_code, DeliveryEvent.objects.count()) == (302, 0)

    def test_past_the_rate_limit_the_reader_still_goes_only_the_count_misses_it(
            self, setup, sink, smtp, settings):
        html, _ = sent_html(setup, sink, smtp, opens=True, clicks=True)
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "track.ip": "1/min"}
        get(f"/t/o/{tokens(html, 'o')[0]}")  # uses the one hit the address has
        response = get(f"/t/c/{tokens(html, 'c')[0]}")
        assert (response.status_code, response["Location"]) == (
            302, "https://shop.example/sale?a=1&b=2")
        assert list(DeliveryEvent.objects.values_list("kind", flat=True)) == ["opened"]

    def test_a_head_request_is_a_link_checker_not_a_click(self, setup, sink, smtp):
        html, _ = sent_html(setup, sink, smtp, clicks=True)
        response = HttpsClient().head(f"/t/c/{tokens(html, 'c')[0]}")
        assert (response.status_code, DeliveryEvent.objects.count()) == (302, 0)

    def test_past_the_failure_limit_tokens_are_refused_before_any_key_is_read(
            self, setup, sink, smtp, settings, django_assert_num_queries):
        html, _ = sent_html(setup, sink, smtp, clicks=True)
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "track.invalid": "2/min"}
        from django.test import RequestFactory

        b, r, n, v, _ = tokens(html, "c")[0].split("-", 4)
        wrong = f"{b}-{r}-{n}-{v}-{'A' * 43}"
        assert [get(f"/t/c/{wrong}").status_code for _ in range(2)] == [404, 404]
        request = RequestFactory().get("/t/c/", REMOTE_ADDR="127.0.0.1")
        with django_assert_num_queries(0):
            parsed = tracking._verified(request, tokens(html, "c")[0])
        assert parsed is None  # even a good token, from this address, for now

    def test_a_token_spelled_differently_is_not_the_same_token(self, setup, sink, smtp):
        html, _ = sent_html(setup, sink, smtp, clicks=True)
        b, r, n, v, mac = tokens(html, "c")[0].split("-", 4)
        for variant in (f"0{b}-{r}-{n}-{v}-{mac}", f"{b}-{r}-0{n}-{v}-{mac}",
                        f"{b}-{r}-{n}-0{v}-{mac}", f"{b}-{r}-{n}-{v}-{mac}=",
                        f"{b}-{r}-{n}-{v}-{mac[:-1]}+"):
            assert get(f"/t/c/{variant}").status_code == 404, variant

    def test_sent_links_survive_a_key_rotation_and_keep_their_version_from_retiring(
            self, setup, sink, smtp):
        from enclave.keys.actions import do_retire_key_version, do_rotate_data_key
        from enclave.keys.errors import KeyInUse

        html, row = sent_html(setup, sink, smtp, clicks=True)
        version = Broadcast.objects.get(pk=row.broadcast_id).tracking_key_version
        do_rotate_data_key("tokens", actor=None)
        assert get(f"/t/c/{tokens(html, 'c')[0]}").status_code == 302
        with pytest.raises(KeyInUse):
            do_retire_key_version("tokens", version, actor=None)


class TestLiteralLinks:
    def test_links_with_liquid_and_plain_http_are_left_out_and_each_kept_once(self):
        html = ('<a href="https://a.example/">1</a><a href="https://a.example/">2</a>'
                '<a href="https://b.example/{{ x }}">3</a><a href="http://c.example/">4</a>'
                '<a href="https://d.example/?q=1&amp;r=2">5</a>')
        assert tracking.literal_links(html) == ["https://a.example/",
                                                "https://d.example/?q=1&amp;r=2"]

    def test_at_most_a_hundred_links_are_tracked(self):
        html = "".join(f'<a href="https://x.example/{n}">x</a>' for n in range(150))
        assert len(tracking.literal_links(html)) == tracking.MAX_LINKS
