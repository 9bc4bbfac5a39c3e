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
