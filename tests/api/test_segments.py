"""Segments through /api/v1/segments with a key: the whole life of a segment and a list,
each refusal with its status, and what keys with narrower rights see."""

from __future__ import annotations

import pytest

from enclave.audience.models import Segment, SegmentMember
from enclave.people.actions import do_create_person, do_define_field, do_update_person
from tests.api.conftest import key_client
from tests.api.test_errors import problem
from tests.people.world import MASKED, PERSON, new_member

TAG_RULE = {"type": "tag", "tag": "vip"}
EMAIL_RULE = {"type": "field", "field": "email", "op": "equals", "value": PERSON["email"]}


def create(api, name="VIPs", kind="dynamic", rules=TAG_RULE):
    body = {"name": name, "kind": kind}
    if rules is not None:
        body["rules"] = rules
    return api.post("/api/v1/segments", body)


def tag(world, *tags):
    do_update_person(world.person, {"tags": list(tags)}, actor=world.actor("owner"))


@pytest.mark.django_db
class TestLifeOfASegment:
    def test_create_returns_the_segment_with_its_location(self, api):
        response = create(api)
        assert response.status_code == 201
        body = response.json()
        assert response["Location"] == f"/api/v1/segments/{body['id']}"
        assert (body["name"], body["kind"], body["rules"], body["refreshed_at"]) == (
            "VIPs", "dynamic", {"type": "tag", "tag": "vip", "has": True}, None)

    def test_count_and_members_are_live(self, api, world):
        segment_id = create(api).json()["id"]
        assert api.get(f"/api/v1/segments/{segment_id}/count").json() == {"count": 0}
        tag(world, "vip")
        assert api.get(f"/api/v1/segments/{segment_id}/count").json() == {"count": 1}
        members = api.get(f"/api/v1/segments/{segment_id}/members").json()
        assert [p["id"] for p in members["results"]] == [world.person.pk]
        assert members["results"][0]["email"] == PERSON["email"]

    def test_members_come_in_cursor_pages_in_id_order(self, api, world):
        owner = world.actor("owner")
        ids = [do_create_person(world.account, {"email": f"p{i}@x.example", "tags": ["vip"]},
                                actor=owner).pk for i in range(5)]
        segment_id = create(api).json()["id"]
        seen, url = [], f"/api/v1/segments/{segment_id}/members?limit=2"
        while url:
            page = api.get(url).json()
            seen += [p["id"] for p in page["results"]]
            url = (f"/api/v1/segments/{segment_id}/members?limit=2&cursor="
                   f"{page['next_cursor']}") if page["next_cursor"] else ""
        assert seen == ids

    def test_list_gets_people_added_and_removed(self, api, world):
        list_id = create(api, "Hand-picked", "static", None).json()["id"]
        added = api.post(f"/api/v1/segments/{list_id}/members", {"people": [world.person.pk]})
        assert added.json() == {"changed": 1}
        assert api.get(f"/api/v1/segments/{list_id}/count").json() == {"count": 1}
        removed = api.delete(f"/api/v1/segments/{list_id}/members/{world.person.pk}")
        assert removed.status_code == 204
        assert not SegmentMember.objects.exists()
        again = api.delete(f"/api/v1/segments/{list_id}/members/{world.person.pk}")
        assert problem(again, 404, "not-found")

    def test_patch_renames_and_replaces_rules(self, api):
        segment_id = create(api).json()["id"]
        response = api.patch(f"/api/v1/segments/{segment_id}",
                             {"name": "Renamed", "rules": EMAIL_RULE})
        assert response.status_code == 200
        assert (response.json()["name"], response.json()["rules"]["field"]) == (
            "Renamed", "email")

    def test_delete_removes_it(self, api):
        segment_id = create(api).json()["id"]
        assert api.delete(f"/api/v1/segments/{segment_id}").status_code == 204
        assert not Segment.objects.exists()
        assert problem(api.get(f"/api/v1/segments/{segment_id}"), 404, "not-found")

    def test_snapshot_creates_a_list_of_the_members_now(self, api, world):
        tag(world, "vip")
        segment_id = create(api).json()["id"]
        response = api.post(f"/api/v1/segments/{segment_id}/snapshot", {"name": "June VIPs"})
        assert response.status_code == 201
        body = response.json()
        assert response["Location"] == f"/api/v1/segments/{body['id']}"
        assert (body["name"], body["kind"], body["rules"]) == ("June VIPs", "static", None)
        tag(world)  # the source no longer matches; the list keeps its people
        assert api.get(f"/api/v1/segments/{segment_id}/count").json() == {"count": 0}
        assert api.get(f"/api/v1/segments/{body['id']}/count").json() == {"count": 1}

    def test_preview_counts_and_samples_without_saving(self, api, world):
        tag(world, "vip")
        response = api.post("/api/v1/segments/preview", {"rules": TAG_RULE})
        assert response.status_code == 200
        assert response.json()["count"] == 1
        assert [p["id"] for p in response.json()["sample"]] == [world.person.pk]
        assert not Segment.objects.exists()


@pytest.mark.django_db
class TestRefusals:
    def test_invalid_rules_are_a_422_naming_the_problem(self, api):
        response = create(api, rules={"type": "field", "field": "nickname", "op": "equals",
                                      "value": "x"})
        body = problem(response, 422, "validation")
        assert "Unknown field 'nickname'" in body["errors"]["rules"][0]
        assert not Segment.objects.exists()

    def test_a_rule_naming_a_missing_segment_is_a_409_naming_it(self, api):
        response = create(api, rules={"type": "segment", "segment": 999999})
        body = problem(response, 409, "conflict")
        assert body["errors"] == {"rules": ["Segment 999999 does not exist."]}
        assert not Segment.objects.exists()

    def test_a_rule_naming_another_accounts_segment_looks_the_same(self, api, world):
        from enclave.audience.actions import do_create_segment

        theirs = do_create_segment(world.other, "Theirs", "static", actor=world.other_actor())
        response = create(api, rules={"type": "segment", "segment": theirs.pk})
        missing = create(api, "Other", rules={"type": "segment", "segment": theirs.pk + 1000})
        assert problem(response, 409, "conflict")["detail"].replace(str(theirs.pk), "N") == \
            problem(missing, 409, "conflict")["detail"].replace(str(theirs.pk + 1000), "N")

    def test_a_cycle_is_a_409(self, api):
        first = create(api, "A").json()["id"]
        second = create(api, "B", rules={"type": "segment", "segment": first}).json()["id"]
        response = api.patch(f"/api/v1/segments/{first}",
                             {"rules": {"type": "segment", "segment": second}})
        assert "refer to itself" in problem(response, 409, "conflict")["detail"]

    def test_deleting_a_segment_others_refer_to_is_a_409(self, api):
        first = create(api, "A").json()["id"]
        create(api, "B", rules={"type": "segment", "segment": first})
        problem(api.delete(f"/api/v1/segments/{first}"), 409, "conflict")
        assert Segment.objects.filter(pk=first).exists()

    def test_a_duplicate_name_is_a_409(self, api):
        create(api, "Same")
        problem(create(api, "Same"), 409, "conflict")

    def test_a_snapshot_with_a_taken_name_is_a_409_and_creates_nothing(self, api):
        segment_id = create(api, "Same").json()["id"]
        problem(api.post(f"/api/v1/segments/{segment_id}/snapshot", {"name": "Same"}),
                409, "conflict")
        assert Segment.objects.count() == 1

    def test_a_snapshot_without_a_name_is_a_422(self, api):
        segment_id = create(api).json()["id"]
        problem(api.post(f"/api/v1/segments/{segment_id}/snapshot", {}), 422, "validation")
        assert Segment.objects.count() == 1

    def test_a_snapshot_of_another_accounts_segment_is_a_404(self, api, world):
        theirs = Segment.objects.create(account=world.other, name="Theirs", kind="static")
        problem(api.post(f"/api/v1/segments/{theirs.pk}/snapshot", {"name": "Mine"}), 404,
                "not-found")
        assert not Segment.objects.filter(name="Mine").exists()

    def test_rules_for_a_static_list_are_a_409(self, api):
        list_id = create(api, "L", "static", None).json()["id"]
        problem(api.patch(f"/api/v1/segments/{list_id}", {"rules": TAG_RULE}), 409, "conflict")

    def test_adding_people_to_a_dynamic_segment_is_a_409(self, api, world):
        segment_id = create(api).json()["id"]
        response = api.post(f"/api/v1/segments/{segment_id}/members",
                            {"people": [world.person.pk]})
        problem(response, 409, "conflict")

    def test_adding_another_accounts_person_is_a_409_and_adds_nobody(self, api, world):
        list_id = create(api, "L", "static", None).json()["id"]
        response = api.post(f"/api/v1/segments/{list_id}/members",
                            {"people": [world.person.pk, world.other_person.pk]})
        body = problem(response, 409, "conflict")
        assert body["errors"] == {"people": [f"No such person: {world.other_person.pk}."]}
        assert not SegmentMember.objects.exists()

    def test_removing_someone_not_in_the_list_is_a_404(self, api, world):
        list_id = create(api, "L", "static", None).json()["id"]
        for person_id in (world.person.pk, world.other_person.pk, 999999):
            response = api.delete(f"/api/v1/segments/{list_id}/members/{person_id}")
            assert problem(response, 404, "not-found")["detail"] == \
                "This person is not in the list."

    def test_a_whole_number_sent_as_a_float_is_an_id(self, api, world):
        list_id = create(api, "L", "static", None).json()["id"]
        response = api.post(f"/api/v1/segments/{list_id}/members",
                            {"people": [float(world.person.pk)]})
        assert response.json() == {"changed": 1}

    @pytest.mark.parametrize("people", [["1"], [1.5], [True], [0], [], None])
    def test_people_must_be_a_list_of_ids(self, api, people):
        list_id = create(api, "L", "static", None).json()["id"]
        response = api.post(f"/api/v1/segments/{list_id}/members", {"people": people})
        problem(response, 422, "validation")

    def test_a_static_list_created_with_rules_is_a_422(self, api):
        problem(create(api, "L", "static", TAG_RULE), 422, "validation")

    def test_rules_nested_past_the_json_depth_limit_are_a_400(self, api):
        tree = TAG_RULE
        for _ in range(40):
            tree = {"type": "not", "rule": {"type": "group", "match": "all", "rules": [tree]}}
        problem(create(api, rules=tree), 400, "too-deep")
        assert not Segment.objects.exists()

    def test_groups_nested_one_deeper_than_allowed_are_a_422(self, api):
        from enclave.audience import rules

        tree = TAG_RULE
        for _ in range(rules.MAX_DEPTH + 1):
            tree = {"type": "group", "match": "all", "rules": [tree]}
        body = problem(create(api, rules=tree), 422, "validation")
        assert "nest at most" in body["errors"]["rules"][0]


@pytest.mark.django_db
class TestNarrowKeys:
    def test_a_masked_key_cannot_save_a_rule_on_a_personal_field(self, world):
        analyst = key_client(world, ceiling="analyst")
        response = analyst.post("/api/v1/segments/preview", {"rules": EMAIL_RULE})
        # An analyst ceiling holds no segments.manage at all: refused before any rule.
        problem(response, 403, "insufficient-scope")

    def test_rule_on_a_field_the_key_sees_masked_is_a_422(self, world):
        from enclave.access.permissions import Permission
        from enclave.accounts.actions import do_save_custom_role
        from enclave.accounts.models import Membership
        from tests.api.conftest import ApiClient
        from tests.apikeys.factories import make_key

        role = do_save_custom_role(world.account, "Segmenters",
                                   [Permission.SEGMENTS_MANAGE.value,
                                    Permission.PEOPLE_READ.value],
                                   actor=world.actor("owner"))
        holder = new_member("segmenter@acme.example", world.account, "owner")
        token, _ = make_key(world.account, holder, scopes=["segments:write", "people:read"],
                            role_ceiling="owner")
        # The key follows its creator's current role: people.read without people.write
        # sees personal fields masked.
        Membership.objects.filter(member=holder).update(custom_role=role)
        client = ApiClient(token)
        response = client.post("/api/v1/segments/preview", {"rules": EMAIL_RULE})
        body = problem(response, 422, "validation")
        assert "not visible in full" in body["errors"]["rules"][0]
        assert client.post("/api/v1/segments/preview", {"rules": TAG_RULE}).status_code == 200

    def test_rules_are_shown_with_values_masked_to_a_masked_key(self, api, world):
        create(api, rules=EMAIL_RULE)
        analyst = key_client(world, ceiling="analyst")
        shown = analyst.get("/api/v1/segments").json()["results"][0]["rules"]
        assert shown["value"] == "•••"
        assert PERSON["email"] not in analyst.get("/api/v1/segments").text

    def test_members_without_people_read_are_ids_only(self, api, world):
        tag(world, "vip")
        segment_id = create(api).json()["id"]
        narrow = key_client(world, scopes=["segments:read"])
        body = narrow.get(f"/api/v1/segments/{segment_id}/members").json()
        assert body["results"][0]["id"] == world.person.pk
        assert "email" not in body["results"][0]
        assert PERSON["email"] not in str(body)
        assert MASKED["email"] not in str(body)


@pytest.mark.django_db
class TestDocument:
    def _schemas(self, client) -> dict:
        return client.get("/api/v1/openapi.json").json()["components"]["schemas"]

    def _fields(self, schemas) -> set[str]:
        out = set()
        for variant in schemas["SegmentCondition"]["anyOf"]:
            field = variant.get("properties", {}).get("field", {})
            out |= set(field.get("enum", []))
        return out

    def test_the_account_document_names_its_usable_fields(self, api, world):
        owner = world.actor("owner")
        do_define_field(world.account, "plan", "Plan", "select", options=["free", "pro"],
                        actor=owner)
        do_define_field(world.account, "vault", "Vault", "text", encrypt_at_rest=True,
                        actor=owner)
        fields = self._fields(self._schemas(api))
        assert {"email", "created_at", "consent", "custom.plan"} <= fields
        assert "custom.vault" not in fields

    def test_a_masked_key_document_names_no_personal_field(self, world):
        analyst = key_client(world, ceiling="analyst")
        fields = self._fields(self._schemas(analyst))
        assert "email" not in fields
        assert "country" in fields

    def test_groups_nest_as_deep_as_the_server_allows(self, api):
        from enclave.audience import rules

        schemas = self._schemas(api)
        assert f"SegmentRuleDepth{rules.MAX_DEPTH}" in schemas
        assert f"SegmentRuleDepth{rules.MAX_DEPTH + 1}" not in schemas
