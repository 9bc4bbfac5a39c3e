"""People, tags, fields, members, audit log and account through /api/v1/ with a key."""

from __future__ import annotations

import pytest

from enclave.core.models import AuditEvent, AuditEventType
from enclave.people.actions import do_archive_person, do_create_person, do_define_field
from enclave.people.models import Person
from tests.api.conftest import key_client
from tests.people.world import MASKED, PERSON


def _make_people(world, n: int) -> list[int]:
    owner = world.actor("owner")
    return [do_create_person(world.account, {"email": f"p{i}@list.example"}, actor=owner).pk
            for i in range(n)]


@pytest.mark.django_db
class TestList:
    def test_cursor_pages_cover_every_person_once_in_id_order(self, api, world):
        _make_people(world, 7)
        seen, url = [], "/api/v1/people?limit=3"
        while url:
            page = api.get(url).json()
            assert len(page["results"]) <= 3
            seen += [p["id"] for p in page["results"]]
            url = f"/api/v1/people?limit=3&cursor={page['next_cursor']}" \
                if page["next_cursor"] else ""
        expected = list(Person.objects.filter(account=world.account).order_by("pk")
                        .values_list("pk", flat=True))
        assert seen == expected

    def test_another_accounts_people_are_never_listed(self, api, world):
        ids = [p["id"] for p in api.get("/api/v1/people?limit=200").json()["results"]]
        assert ids == [world.person.pk]  # the own person only, never world.other_person

    def test_archived_people_are_listed_only_when_asked(self, api, world):
        do_archive_person(world.person, actor=world.actor("owner"))
        assert api.get("/api/v1/people").json()["results"] == []
        listed = api.get("/api/v1/people?archived=1").json()["results"]
        assert [p["id"] for p in listed] == [world.person.pk]

    def test_exact_filter_on_a_visible_field_finds_the_person(self, api, world):
        found = api.get(f"/api/v1/people?email={PERSON['email'].upper()}").json()["results"]
        assert [p["id"] for p in found] == [world.person.pk]

    def test_search_uses_only_fields_visible_to_the_key(self, api, world):
        analyst = key_client(world, ceiling="analyst")
        assert [p["id"] for p in api.get("/api/v1/people?q=xq.person").json()["results"]] \
            == [world.person.pk]
        assert analyst.get("/api/v1/people?q=xq.person").json()["results"] == []
        by_company = analyst.get("/api/v1/people?q=Globex").json()["results"]
        assert [p["id"] for p in by_company] == [world.person.pk]

    def test_tag_filter_lists_only_tagged_people(self, api, world):
        _make_people(world, 2)
        assert api.post(f"/api/v1/people/{world.person.pk}/tags",
                        {"tags": ["gold"]}).status_code == 200
        found = api.get("/api/v1/people?tag=gold").json()["results"]
        assert [p["id"] for p in found] == [world.person.pk]

    def test_custom_field_filter_on_a_masked_field_is_422(self, api, world):
        do_define_field(world.account, "nickname", "Nickname", "text",
                        actor=world.actor("owner"))
        analyst = key_client(world, ceiling="analyst")
        assert api.get("/api/v1/people?custom.nickname=Zed").status_code == 200
        response = analyst.get("/api/v1/people?custom.nickname=Zed")
        assert response.status_code == 422
        assert response.json()["type"].endswith("/field-not-queryable")

    def test_unknown_custom_field_filter_is_400(self, api):
        assert api.get("/api/v1/people?custom.nothing=1").status_code == 400


@pytest.mark.django_db
class TestGet:
    def test_masked_values_are_masked_and_named(self, world):
        body = key_client(world, ceiling="analyst").get(
            f"/api/v1/people/{world.person.pk}").json()
        assert body["email"] == MASKED["email"]
        assert {"email", "first_name", "last_name", "phone", "address", "ip"} <= set(
            body["masked"])
        assert body["company"] == PERSON["company"]

    def test_custom_values_keep_their_type_when_visible(self, api, world):
        owner = world.actor("owner")
        do_define_field(world.account, "score", "Score", "number", pd_class="none",
                        actor=owner)
        do_define_field(world.account, "vip", "VIP", "boolean", pd_class="personal",
                        actor=owner)
        api.patch(f"/api/v1/people/{world.person.pk}",
                  {"custom": {"score": 42, "vip": True}})
        body = api.get(f"/api/v1/people/{world.person.pk}").json()
        assert body["custom"] == {"score": 42, "vip": True}

    def test_personal_custom_value_is_masked_for_an_analyst_key(self, api, world):
        do_define_field(world.account, "nickname", "Nickname", "text",
                        actor=world.actor("owner"))
        api.patch(f"/api/v1/people/{world.person.pk}", {"custom": {"nickname": "Zed"}})
        body = key_client(world, ceiling="analyst").get(
            f"/api/v1/people/{world.person.pk}").json()
        assert body["custom"] == {"nickname": "•••"}
        assert "custom.nickname" in body["masked"]


@pytest.mark.django_db
class TestWrite:
    def test_create_returns_201_with_location_and_audits_the_key_creator(self, api, world):
        response = api.post("/api/v1/people", {"email": "New@Example.com", "tags": ["b", "a"]})
        body = response.json()
        assert response.status_code == 201
        assert response["Location"] == f"/api/v1/people/{body['id']}"
        assert (body["email"], body["tags"]) == ("new@example.com", ["a", "b"])
        row = AuditEvent.objects.get(event_type=AuditEventType.PERSON_CREATED,
                                     target_id=str(body["id"]))
        assert row.actor == world.members["owner"]
        assert row.trace_id == response["X-Trace-Id"]
        assert "new@example.com" not in str(row.extra_data)

    def test_audit_row_names_the_api_key_by_public_id(self, api, world):
        response = api.post("/api/v1/people", {"email": "keyed@example.com"})
        row = AuditEvent.objects.get(event_type=AuditEventType.PERSON_CREATED,
                                     target_id=str(response.json()["id"]))
        assert row.extra_data["via_api_key"] == api.token.split("_")[2]

    def test_patch_changes_only_the_fields_sent(self, api, world):
        body = api.patch(f"/api/v1/people/{world.person.pk}", {"company": "Initech"}).json()
        assert (body["company"], body["email"]) == ("Initech", PERSON["email"])
        world.person.refresh_from_db()
        assert (world.person.company, world.person.email, world.person.phone) == (
            "Initech", PERSON["email"], PERSON["phone"])

    def test_a_time_zone_is_set_and_read_back(self, api, world):
        body = api.patch(f"/api/v1/people/{world.person.pk}",
                         {"time_zone": "Australia/Sydney"}).json()
        assert body["time_zone"] == "Australia/Sydney"
        assert api.get(f"/api/v1/people/{world.person.pk}").json()["time_zone"] == (
            "Australia/Sydney")

    def test_an_unknown_time_zone_is_a_422_and_changes_nothing(self, api, world):
        response = api.patch(f"/api/v1/people/{world.person.pk}",
                             {"time_zone": "Australia/Sydny"})
        assert response.status_code == 422
        assert list(response.json()["errors"]) == ["time_zone"]
        world.person.refresh_from_db()
        assert world.person.time_zone == ""

    def test_field_masked_for_the_key_cannot_be_set(self, api, world):
        # No scope grants people.unmask, so sensitive fields are masked for every key.
        response = api.patch(f"/api/v1/people/{world.person.pk}", {"address": "Elsewhere"})
        assert response.status_code == 422
        assert "masked" in response.json()["errors"]["address"][0]
        world.person.refresh_from_db()
        assert world.person.address == PERSON["address"]

    def test_upsert_creates_then_updates_by_external_id(self, api, world):
        first = api.post("/api/v1/people/upsert", {"external_id": "crm-1", "company": "A"})
        second = api.post("/api/v1/people/upsert", {"external_id": "crm-1", "company": "B"})
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json()["id"] == second.json()["id"]
        assert second.json()["company"] == "B"

    def test_upsert_matches_by_email_when_no_external_id(self, api, world):
        response = api.post("/api/v1/people/upsert", {"email": PERSON["email"],
                                                      "company": "Umbrella"})
        assert (response.status_code, response.json()["id"]) == (200, world.person.pk)

    def test_upsert_without_email_or_external_id_is_422(self, api):
        response = api.post("/api/v1/people/upsert", {"company": "Nobody"})
        assert response.status_code == 422
        assert "external_id" in response.json()["errors"]

    def test_archive_hides_the_person_from_lists(self, api, world):
        response = api.post(f"/api/v1/people/{world.person.pk}/archive")
        assert response.status_code == 200
        world.person.refresh_from_db()
        assert world.person.archived_at is not None
        assert response.json()["archived_at"] == world.person.archived_at.isoformat()
        assert api.get("/api/v1/people").json()["results"] == []

    def test_erase_deletes_the_person(self, api, world):
        response = api.delete(f"/api/v1/people/{world.person.pk}")
        assert response.status_code == 204
        assert api.get(f"/api/v1/people/{world.person.pk}").status_code == 404
        assert not Person.objects.filter(pk=world.person.pk).exists()
        assert AuditEvent.objects.get(event_type=AuditEventType.PERSON_ERASED).target_id == \
            str(world.person.pk)


@pytest.mark.django_db
class TestTags:
    def test_adding_tags_keeps_the_existing_ones(self, api, world):
        api.post(f"/api/v1/people/{world.person.pk}/tags", {"tags": ["a"]})
        body = api.post(f"/api/v1/people/{world.person.pk}/tags", {"tags": ["b"]}).json()
        assert body == {"tags": ["a", "b"]}

    def test_removing_a_tag_leaves_the_others(self, api, world):
        api.post(f"/api/v1/people/{world.person.pk}/tags", {"tags": ["a", "b"]})
        body = api.delete(f"/api/v1/people/{world.person.pk}/tags/a").json()
        assert body == {"tags": ["b"]}
        assert api.get(f"/api/v1/people/{world.person.pk}/tags").json() == {"tags": ["b"]}

    def test_removing_a_tag_the_person_lacks_is_404(self, api, world):
        assert api.delete(f"/api/v1/people/{world.person.pk}/tags/nope").status_code == 404

    def test_account_tags_count_their_people(self, api, world):
        api.post(f"/api/v1/people/{world.person.pk}/tags", {"tags": ["gold"]})
        assert api.get("/api/v1/tags").json() == {"results": [{"name": "gold", "people": 1}]}


@pytest.mark.django_db
class TestAccountResources:
    def test_defining_a_field_returns_it_with_the_keys_visibility(self, api):
        response = api.post("/api/v1/fields", {"key": "tier", "type": "select",
                                               "options": ["gold"], "pd_class": "none"})
        assert response.status_code == 201
        assert response.json()["visibility"] == "visible"
        assert [f["key"] for f in api.get("/api/v1/fields").json()["results"]] == ["tier"]

    def test_members_list_shows_each_role(self, api):
        roles = {m["role"] for m in api.get("/api/v1/members").json()["results"]}
        assert roles == {"owner", "admin", "user", "analyst", "viewer"}

    def test_audit_log_pages_newest_first_and_filters(self, api, world):
        _make_people(world, 3)
        first = api.get("/api/v1/audit?event=person_created&limit=2").json()
        second = api.get(f"/api/v1/audit?event=person_created&limit=2"
                         f"&cursor={first['next_cursor']}").json()
        ids = [e["id"] for e in first["results"] + second["results"]]
        assert ids == sorted(ids, reverse=True)
        assert len(ids) == 3
        assert {e["event"] for e in first["results"]} == {"person_created"}

    def test_audit_labels_person_targets_through_the_formatter(self, api, world):
        api.patch(f"/api/v1/people/{world.person.pk}", {"company": "Initech"})
        event = api.get("/api/v1/audit?event=person_updated").json()["results"][0]
        assert event["target_label"] == PERSON["email"]

    def test_account_reports_the_keys_permissions(self, world):
        client = key_client(world, scopes=["account:read", "people:read"])
        body = client.get("/api/v1/account").json()
        assert (body["name"], body["permissions"]) == ("Acme", ["people.read"])
