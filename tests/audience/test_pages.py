"""Segment and topic pages: the builder's rows and JSON, preview, detail through the
visibility formatter, and refusals shown on the page."""

from __future__ import annotations

import json

import pytest

from enclave.audience.actions import do_create_segment
from enclave.audience.models import Segment, Topic
from enclave.people.actions import do_update_person
from tests.people.world import MASKED, PERSON


def rows(**rows) -> dict:
    """Builder form rows: row index → dict of that row's fields."""
    out = {"match": "all"}
    for index, fields in rows.items():
        for key, value in fields.items():
            out[f"row-{index.removeprefix('r')}-{key}"] = value
    return out


@pytest.mark.django_db
class TestBuilder:
    def test_rows_make_a_dynamic_segment(self, world):
        do_update_person(world.person, {"tags": ["vip"]}, actor=world.actor("owner"))
        response = world.client("user").post("/app/segments/new/", {
            "name": "GB VIPs", "kind": "dynamic", **rows(
                r0={"kind": "tag", "value": "vip"},
                r1={"kind": "field", "field": "country", "op": "in", "value": "GB, FR"},
                r2={"kind": "event", "value": "Bought", "max": "0", "not": "on"})})
        segment = Segment.objects.get()
        assert response["Location"] == f"/app/segments/{segment.pk}/"
        assert segment.rules == {"type": "group", "match": "all", "rules": [
            {"type": "tag", "tag": "vip", "has": True},
            {"type": "field", "field": "country", "op": "in", "value": ["GB", "FR"]},
            {"type": "not", "rule": {"type": "event", "name": "Bought", "min": None,
                                     "max": 0, "within_days": None, "since": None,
                                     "where": None}}]}

    def test_rows_in_a_sub_group_become_one_nested_condition(self, world):
        world.client("user").post("/app/segments/new/", {
            "name": "Trial and keen", "kind": "dynamic", "group-a-match": "any", **rows(
                r0={"kind": "tag", "value": "trial"},
                r1={"kind": "event", "value": "Viewed pricing", "min": "3", "group": "a"},
                r2={"kind": "event", "value": "Bought", "group": "a"})})
        rules = Segment.objects.get().rules
        assert [r["type"] for r in rules["rules"]] == ["tag", "group"]
        nested = rules["rules"][1]
        assert (nested["match"], [r["name"] for r in nested["rules"]]) == (
            "any", ["Viewed pricing", "Bought"])

    def test_a_negated_sub_group_is_none_of_its_rows(self, world):
        world.client("user").post("/app/segments/new/", {
            "name": "Not FR or DE", "kind": "dynamic", "group-b-not": "on",
            "group-b-match": "any", **rows(
                r0={"kind": "field", "field": "country", "op": "equals", "value": "FR",
                    "group": "b"},
                r1={"kind": "field", "field": "country", "op": "equals", "value": "DE",
                    "group": "b"})})
        nested = Segment.objects.get().rules["rules"][0]
        assert (nested["match"], [(r["type"], r["rule"]["value"]) for r in nested["rules"]]
                ) == ("all", [("not", "FR"), ("not", "DE")])

    def test_a_negated_all_group_is_not_all_of_its_rows(self, world):
        world.client("user").post("/app/segments/new/", {
            "name": "Not GB trial", "kind": "dynamic", "group-a-not": "on", **rows(
                r0={"kind": "field", "field": "country", "op": "equals", "value": "GB",
                    "group": "a"},
                r1={"kind": "tag", "value": "trial", "group": "a"})})
        nested = Segment.objects.get().rules["rules"][0]
        assert (nested["match"], [r["type"] for r in nested["rules"]]) == (
            "any", ["not", "not"])

    def test_an_unknown_group_is_a_page_error(self, world):
        response = world.client("user").post("/app/segments/new/", {
            "name": "X", "kind": "dynamic", **rows(
                r0={"kind": "tag", "value": "trial", "group": "z"})})
        assert response.status_code == 422
        assert "Row 1: choose the main group or group A, B, C." in response.text
        assert not Segment.objects.exists()

    def test_preview_counts_and_shows_a_sample_without_saving(self, world):
        response = world.client("user").post("/app/segments/preview/", rows(
            r0={"kind": "field", "field": "country", "op": "equals", "value": "GB"}))
        assert '<span id="preview-count">1</span>' in response.text
        assert PERSON["email"] in response.text
        assert not Segment.objects.exists()

    def test_a_rule_the_role_cannot_use_is_shown_as_an_error(self, world):
        from enclave.accounts.actions import do_change_role, do_save_custom_role

        role = do_save_custom_role(world.account, "Masked segmenters",
                                   ["segments.manage", "people.read"],
                                   actor=world.actor("owner"))
        do_change_role(world.membership("analyst"), role, actor=world.actor("owner"))
        response = world.client("analyst").post("/app/segments/new/", {
            "name": "Guess", "kind": "dynamic", "rules_json": json.dumps(
                {"type": "field", "field": "email", "op": "starts_with", "value": "xq"})})
        assert response.status_code == 422
        assert "not visible in full" in response.text
        assert not Segment.objects.exists()

    def test_invalid_json_is_a_page_error(self, world):
        response = world.client("user").post("/app/segments/new/", {
            "name": "Broken", "kind": "dynamic", "rules_json": "{not json"})
        assert response.status_code == 422
        assert "not valid JSON" in response.text

    def test_no_condition_is_a_page_error(self, world):
        response = world.client("user").post("/app/segments/new/", {"name": "Empty",
                                                                    "kind": "dynamic"})
        assert response.status_code == 422
        assert "at least one condition" in response.text


@pytest.mark.django_db
class TestHostileBuilderInput:
    @pytest.mark.parametrize(("text", "says"), [
        ("[" * 3000 + "]" * 3000, "nest too deep"),
        ('{"type": "field", "field": "custom.score", "op": "gt", "value": NaN}',
         "not valid JSON")])
    def test_is_a_page_error_not_a_crash(self, world, text, says):
        response = world.client("user").post("/app/segments/new/", {
            "name": "Hostile", "kind": "dynamic", "rules_json": text})
        assert response.status_code == 422
        assert says in response.text
        assert not Segment.objects.exists()

    def test_a_nan_in_a_row_is_a_page_error(self, world):
        from enclave.people.actions import do_define_field

        do_define_field(world.account, "score", "Score", "number", actor=world.actor("owner"))
        response = world.client("user").post("/app/segments/new/", {"name": "N", **rows(
            r0={"kind": "field", "field": "custom.score", "op": "gt", "value": "nan"})})
        assert response.status_code == 422
        assert not Segment.objects.exists()


@pytest.mark.django_db
class TestEditMasked:
    def _masked_editor(self, world):
        from enclave.accounts.actions import do_change_role, do_save_custom_role

        role = do_save_custom_role(world.account, "Masked segmenters",
                                   ["segments.manage", "people.read"],
                                   actor=world.actor("owner"))
        do_change_role(world.membership("analyst"), role, actor=world.actor("owner"))
        return world.client("analyst")

    def test_the_edit_page_masks_values_the_editor_cannot_see(self, world):
        segment = do_create_segment(world.account, "Xq", "dynamic", {
            "type": "field", "field": "email", "op": "equals", "value": PERSON["email"]},
            actor=world.actor("owner"))
        page = self._masked_editor(world).get(f"/app/segments/{segment.pk}/edit/").text
        assert PERSON["email"] not in page

    def test_renaming_keeps_rules_the_editor_sees_masked(self, world):
        rule = {"type": "field", "field": "email", "op": "equals", "value": PERSON["email"]}
        segment = do_create_segment(world.account, "Xq", "dynamic", rule,
                                    actor=world.actor("owner"))
        shown = {**rule, "value": "•••"}
        response = self._masked_editor(world).post(f"/app/segments/{segment.pk}/edit/", {
            "name": "Renamed", "rules_json": json.dumps(shown)})
        assert response.status_code == 302
        segment.refresh_from_db()
        assert (segment.name, segment.rules["value"]) == ("Renamed", PERSON["email"])


@pytest.mark.django_db
class TestDetail:
    def test_an_analyst_sees_the_sample_and_rule_values_masked(self, world):
        do_create_segment(world.account, "Xq", "dynamic", {
            "type": "field", "field": "email", "op": "equals", "value": PERSON["email"]},
            actor=world.actor("owner"))
        page = world.client("analyst").get(
            f"/app/segments/{Segment.objects.get().pk}/").text
        assert '<span id="segment-count">1</span>' in page
        assert PERSON["email"] not in page
        assert MASKED["email"] in page

    def test_deleting_a_segment_others_refer_to_is_a_409_page(self, world):
        owner = world.actor("owner")
        inner = do_create_segment(world.account, "Inner", "static", actor=owner)
        do_create_segment(world.account, "Outer", "dynamic",
                          {"type": "segment", "segment": inner.pk}, actor=owner)
        response = world.client("user").post(f"/app/segments/{inner.pk}/delete/")
        assert response.status_code == 409
        assert Segment.objects.filter(pk=inner.pk).exists()

    def test_save_as_a_list_makes_a_list_of_the_people_now(self, world):
        from enclave.audience.models import SegmentMember

        do_update_person(world.person, {"tags": ["vip"]}, actor=world.actor("owner"))
        segment = do_create_segment(world.account, "VIPs", "dynamic",
                                    {"type": "tag", "tag": "vip"}, actor=world.actor("owner"))
        response = world.client("user").post(f"/app/segments/{segment.pk}/snapshot/",
                                             {"name": "VIPs in June"})
        snapshot = Segment.objects.get(name="VIPs in June")
        assert response["Location"] == f"/app/segments/{snapshot.pk}/"
        assert list(SegmentMember.objects.filter(segment=snapshot)
                    .values_list("person_id", flat=True)) == [world.person.pk]

    def test_save_as_a_list_with_a_taken_name_is_a_page_error(self, world):
        segment = do_create_segment(world.account, "VIPs", "dynamic",
                                    {"type": "tag", "tag": "vip"}, actor=world.actor("owner"))
        response = world.client("user").post(f"/app/segments/{segment.pk}/snapshot/",
                                             {"name": "VIPs"})
        assert response.status_code == 422
        assert "Another segment has this name." in response.text
        assert Segment.objects.count() == 1

    def test_save_as_a_list_is_offered_only_to_managers(self, world):
        segment = do_create_segment(world.account, "VIPs", "dynamic",
                                    {"type": "tag", "tag": "vip"}, actor=world.actor("owner"))
        url = f"/app/segments/{segment.pk}/"
        assert 'id="snapshot-form"' in world.client("user").get(url).text
        assert 'id="snapshot-form"' not in world.client("viewer").get(url).text


@pytest.mark.django_db
class TestTopicsPage:
    def test_a_member_with_topics_manage_creates_a_topic(self, world):
        world.client("user").post("/app/topics/", {
            "key": "news", "name": "News", "consent_text": "Monthly news.",
            "double_opt_in": "on"})
        topic = Topic.objects.get()
        page = world.client("viewer").get("/app/topics/").text
        assert f"/subscribe/{topic.public_id}" in page
        assert "New topic" not in page  # the viewer cannot create one

    def test_a_bad_key_is_a_page_error(self, world):
        response = world.client("user").post("/app/topics/", {
            "key": "Bad Key", "name": "News", "consent_text": "x"})
        assert response.status_code == 422
        assert not Topic.objects.exists()


def _topic(world, key="news", double_opt_in=False):
    from enclave.audience.subscriptions import do_create_topic

    return do_create_topic(world.account, key, key.title(), consent_text="Monthly news.",
                           double_opt_in=double_opt_in, actor=world.actor("owner"))


@pytest.mark.django_db
class TestPersonSubscriptionsPage:
    def url(self, world):
        return f"/app/people/{world.person.pk}/subscriptions/"

    def test_subscribing_from_the_page_records_an_app_consent(self, world):
        from enclave.audience.models import ConsentRecord, Subscription

        topic = _topic(world)
        response = world.client("user").post(self.url(world), {"topic": "news",
                                                               "subscribe": "1"})
        assert "Subscribed to News." in response.text
        assert Subscription.objects.get(person=world.person, topic=topic).status == \
            "subscribed"
        assert ConsentRecord.objects.get(person=world.person).method == "app"

    def test_a_double_opt_in_topic_waits_for_the_link(self, world):
        from enclave.audience.models import Subscription

        _topic(world, double_opt_in=True)
        response = world.client("user").post(self.url(world), {"topic": "news",
                                                               "subscribe": "1"})
        assert "A confirmation link was sent for News" in response.text
        assert Subscription.objects.get(person=world.person).status == "pending"

    def test_unsubscribing_from_the_page(self, world):
        from enclave.audience.models import Subscription

        _topic(world)
        client = world.client("user")
        client.post(self.url(world), {"topic": "news", "subscribe": "1"})
        client.post(self.url(world), {"topic": "news", "subscribe": "0"})
        assert Subscription.objects.get(person=world.person).status == "unsubscribed"

    @pytest.mark.parametrize(("data", "says"), [
        ({"topic": "nope", "subscribe": "1"}, "No such topic."),
        ({"topic": "news", "subscribe": "yes"}, "Choose subscribe or unsubscribe."),
    ])
    def test_bad_input_is_a_page_error_and_changes_nothing(self, world, data, says):
        from enclave.audience.models import ConsentRecord

        _topic(world)
        response = world.client("user").post(self.url(world), data)
        assert response.status_code == 422
        assert says in response.text
        assert not ConsentRecord.objects.exists()

    def test_a_masked_role_sees_the_consent_address_masked(self, world):
        from enclave.audience.subscriptions import do_change_subscription
        from enclave.people import visibility

        do_change_subscription(world.person, _topic(world), True, method="form",
                               ip="198.51.100.23", actor=None)
        page = world.client("analyst").get(self.url(world)).text
        assert "198.51.100.23" not in page
        assert visibility.MASK in page
        assert "198.51.100.23" in world.client("owner").get(self.url(world)).text

    def test_a_reader_gets_no_change_buttons(self, world):
        _topic(world)
        page = world.client("analyst").get(self.url(world)).text
        assert "never subscribed" in page
        assert 'name="subscribe"' not in page


@pytest.mark.django_db
class TestSuppressionsPage:
    def post(self, world, action, email="gone@example.com", role="user"):
        return world.client(role).post("/app/suppressions/", {"action": action,
                                                              "email": email})

    def test_suppress_check_and_take_off(self, world):
        assert "The address is suppressed." in self.post(world, "add").text
        assert "The address is suppressed." in self.post(world, "check").text
        assert "The address is no longer suppressed." in self.post(world, "remove").text
        assert "The address is not suppressed." in self.post(world, "check").text

    def test_counts_by_reason_and_never_the_address(self, world):
        response = self.post(world, "add")
        assert "<th scope=\"row\">manual</th><td>1</td>" in response.text
        assert "gone@example.com" not in response.text

    def test_an_address_suppressed_by_erasure_stays(self, world):
        from enclave.people.actions import do_erase_person

        do_erase_person(world.person, actor=world.actor("owner"))
        response = self.post(world, "remove", email=PERSON["email"])
        assert response.status_code == 422
        assert "stays suppressed" in response.text
        assert "The address is suppressed." in self.post(world, "check",
                                                         email=PERSON["email"]).text

    @pytest.mark.parametrize(("action", "email", "says"), [
        ("add", "", "Enter an email address."),
        ("delete-all", "gone@example.com", "Choose add, check or remove."),
    ])
    def test_bad_input_is_a_page_error(self, world, action, email, says):
        from enclave.audience.models import Suppression

        response = self.post(world, action, email=email)
        assert response.status_code == 422
        assert says in response.text
        assert not Suppression.objects.exists()


@pytest.mark.django_db
class TestTopicPage:
    def test_changing_the_consent_text_starts_a_new_version(self, world):
        topic = _topic(world)
        response = world.client("user").post(f"/app/topics/{topic.pk}/", {
            "name": "News", "description": "", "consent_text": "Weekly news.",
            "double_opt_in": "on"})
        assert response["Location"] == f"/app/topics/{topic.pk}/"
        topic.refresh_from_db()
        assert (topic.consent_text, topic.consent_version, topic.double_opt_in) == (
            "Weekly news.", 2, True)

    def test_an_empty_name_is_a_page_error_and_changes_nothing(self, world):
        topic = _topic(world)
        response = world.client("user").post(f"/app/topics/{topic.pk}/", {
            "name": " ", "consent_text": "Weekly news."})
        assert response.status_code == 422
        assert "This is required." in response.text
        topic.refresh_from_db()
        assert (topic.name, topic.consent_version) == ("News", 1)

    def test_counts_subscribers_and_offers_no_form_to_a_viewer(self, world):
        from enclave.audience.subscriptions import do_change_subscription

        topic = _topic(world)
        do_change_subscription(world.person, topic, True, method="app",
                               actor=world.actor("owner"))
        page = world.client("viewer").get(f"/app/topics/{topic.pk}/").text
        assert '<span id="topic-subscribed">1</span>' in page
        assert 'name="consent_text"' not in page


UNUSABLE = {"type": "field", "field": "custom.gone", "op": "equals", "value": "x"}


def _unusable(world):
    segment = do_create_segment(world.account, "Broken", "dynamic",
                                {"type": "tag", "tag": "vip"}, actor=world.actor("owner"))
    Segment.objects.filter(pk=segment.pk).update(rules=UNUSABLE)
    return segment


@pytest.mark.django_db
class TestUnusableRules:
    """Only an anonymised restore stores a tree that no longer checks (here: a custom
    field that is gone): every surface says so instead of failing."""

    def test_the_detail_page_says_the_rules_cannot_be_evaluated(self, world):
        response = world.client("user").get(f"/app/segments/{_unusable(world).pk}/")
        assert response.status_code == 200
        assert "rules cannot be evaluated" in response.text
        assert 'id="segment-count"' not in response.text

    def test_the_list_page_shows_the_segment_without_a_count(self, world):
        _unusable(world)
        response = world.client("user").get("/app/segments/")
        assert response.status_code == 200
        assert "rules unusable" in response.text

    def test_save_as_a_list_is_a_page_error_and_creates_nothing(self, world):
        segment = _unusable(world)
        response = world.client("user").post(f"/app/segments/{segment.pk}/snapshot/",
                                             {"name": "Copy"})
        assert response.status_code == 422
        assert "rules cannot be evaluated" in response.text
        assert Segment.objects.count() == 1

    def test_the_api_count_is_a_422(self, world):
        from tests.api.conftest import key_client
        from tests.api.test_errors import problem

        api = key_client(world, scopes=["segments:read"])
        problem(api.get(f"/api/v1/segments/{_unusable(world).pk}/count"), 422,
                "validation")

    def test_the_cli_count_is_one_line_and_exit_2(self, world, capsys):
        from enclave import cli

        assert cli.main(["segments", "count", str(_unusable(world).pk)]) == 2
        assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.django_db
class TestPageLimits:
    def test_suppression_checks_past_the_limit_are_a_429_page(self, world, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES,
                                      "suppression.lookup": "1/h"}
        client = world.client("user")
        client.post("/app/suppressions/", {"action": "check", "email": "a@example.com"})
        response = client.post("/app/suppressions/", {"action": "check",
                                                       "email": "a@example.com"})
        assert response.status_code == 429
        assert "Too many look-ups." in response.text

    def test_subscription_toggling_past_the_mail_limit_is_a_429_page(self, world):
        from enclave.audience.models import Subscription

        _topic(world, double_opt_in=True)
        client = world.client("user")
        url = f"/app/people/{world.person.pk}/subscriptions/"
        for _ in range(3):
            client.post(url, {"topic": "news", "subscribe": "1"})
            client.post(url, {"topic": "news", "subscribe": "0"})
        response = client.post(url, {"topic": "news", "subscribe": "1"})
        assert response.status_code == 429
        assert Subscription.objects.get(person=world.person).status == "unsubscribed"


@pytest.mark.django_db
class TestSuppressionsPageInput:
    @pytest.mark.parametrize("email", ["not an email at all", "a" * 300 + "@example.com"])
    @pytest.mark.parametrize("action", ["add", "check", "remove"])
    def test_an_invalid_address_is_a_page_error_and_stores_nothing(self, world, action,
                                                                   email):
        from enclave.audience.models import Suppression

        response = world.client("user").post("/app/suppressions/", {"action": action,
                                                                     "email": email})
        assert response.status_code == 422
        assert not Suppression.objects.exists()
