"""People, audit pages: search, filters, keyset pagination, forms, reveal, erase, export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest

from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.people import actions
from enclave.people.models import Person
from enclave.people.views import PAGE_SIZE
from tests.people.world import MASKED, PERSON


def ids_on(response) -> list[int]:
    return [int(i) for i in re.findall(r'<a href="/app/people/(\d+)/">', response.text)]


def total_on(response) -> int:
    return int(re.search(r'<span id="people-total">(\d+)</span>', response.text)[1])


@pytest.mark.django_db
class TestPeopleList:
    def test_owner_searches_by_email(self, world):
        response = world.client("owner").get("/app/people/", {"q": "xq.person"})
        assert ids_on(response) == [world.person.pk]

    def test_analyst_search_ignores_masked_fields_and_the_count_shows_nothing(self, world):
        response = world.client("analyst").get("/app/people/", {"q": "xq.person"})
        assert (ids_on(response), total_on(response)) == ([], 0)

    def test_analyst_searches_visible_fields(self, world):
        response = world.client("analyst").get("/app/people/", {"q": "Globex"})
        assert ids_on(response) == [world.person.pk]

    def test_filter_on_a_masked_field_is_a_clear_400(self, world):
        response = world.client("analyst").get("/app/people/", {"email": PERSON["email"]})
        assert response.status_code == 400
        assert "masked for your role" in response.text

    def test_sort_on_a_masked_field_is_a_clear_400(self, world):
        response = world.client("analyst").get("/app/people/", {"sort": "-last_name"})
        assert response.status_code == 400

    def test_filter_on_a_visible_field_works(self, world):
        response = world.client("analyst").get("/app/people/", {"country": "gb"})
        assert ids_on(response) == [world.person.pk]

    def test_unknown_parameter_is_400(self, world):
        assert world.client("owner").get("/app/people/", {"password": "x"}).status_code == 400

    def test_unknown_column_is_400(self, world):
        assert world.client("owner").get("/app/people/", {"cols": "email,ssn"}).status_code == 400

    def test_bad_cursor_is_400(self, world):
        assert world.client("owner").get("/app/people/", {"after": "!!!"}).status_code == 400

    def test_deeply_nested_cursor_is_400_not_a_crash(self, world):
        import base64

        cursor = base64.urlsafe_b64encode(b"[" * 2000).decode().rstrip("=")
        assert world.client("owner").get("/app/people/", {"after": cursor}).status_code == 400

    def test_viewer_sees_only_the_total(self, world):
        response = world.client("viewer").get("/app/people/")
        assert total_on(response) == 1
        assert ids_on(response) == []

    def test_archived_people_are_left_out(self, world):
        kept = Person.objects.create(account=world.account, email="kept@example.com")
        actions.do_archive_person(world.person, actor=world.actor("owner"))
        response = world.client("owner").get("/app/people/")
        assert (ids_on(response), total_on(response)) == ([kept.pk], 1)


@pytest.mark.django_db
class TestKeysetPagination:
    @pytest.mark.parametrize("sort", ["id", "-id", "company", "-company"])
    def test_pages_cover_every_person_once(self, world, sort):
        Person.objects.bulk_create(
            Person(account=world.account, email=f"p{i}@example.com", company=f"Co {i % 7}")
            for i in range(PAGE_SIZE + 20))
        client, seen, url = world.client("owner"), [], f"/app/people/?sort={sort}"
        while url:
            response = client.get(url)
            seen += ids_on(response)
            link = re.search(r'<a href="(\?[^"]+)" rel="next">', response.text)
            url = "/app/people/" + link[1].replace("&amp;", "&") if link else ""
        expected = Person.objects.filter(account=world.account).count()
        assert sorted(seen) == sorted(set(seen))
        assert len(seen) == expected


@pytest.mark.django_db
class TestPersonPages:
    def test_create_form_shows_field_errors_with_422(self, world):
        response = world.client("user").post("/app/people/new/", {"email": "nope"})
        assert response.status_code == 422
        assert "Enter a valid email address." in response.text
        assert Person.objects.filter(account=world.account).count() == 1

    def test_create_form_creates_and_redirects(self, world):
        response = world.client("user").post("/app/people/new/", {
            "email": "fresh@example.com", "tags": "vip"})
        person = Person.objects.get(email="fresh@example.com")
        assert response["Location"] == f"/app/people/{person.pk}/"
        assert person.account == world.account

    def test_edit_form_is_prefilled_and_saves(self, world):
        client = world.client("user")
        assert PERSON["phone"] in client.get(f"/app/people/{world.person.pk}/edit/").text
        response = client.post(f"/app/people/{world.person.pk}/edit/", {"company": "Edited"})
        assert (response.status_code, response["Location"]) == (
            302, f"/app/people/{world.person.pk}/")
        world.person.refresh_from_db()
        assert world.person.company == "Edited"

    def test_analyst_reveals_one_value_with_a_reason(self, world):
        client = world.client("analyst")
        page = client.get(f"/app/people/{world.person.pk}/")
        assert MASKED["phone"] in page.text
        assert PERSON["phone"] not in page.text
        response = client.post(f"/app/people/{world.person.pk}/reveal/",
                               {"field": "phone", "reason": "customer asked for a call"})
        assert f'<code id="revealed-value">{PERSON["phone"]}</code>' in response.text
        assert AuditEvent.objects.get(
            event_type=AuditEventType.PERSON_VALUE_REVEALED).extra_data["field"] == "phone"

    def test_reveal_without_reason_is_422(self, world):
        response = world.client("analyst").post(f"/app/people/{world.person.pk}/reveal/",
                                                {"field": "phone", "reason": ""})
        assert response.status_code == 422
        assert MASKED["phone"] in response.text
        assert PERSON["phone"] not in response.text
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.PERSON_VALUE_REVEALED).exists()

    def test_erase_needs_the_word_erase(self, world):
        response = world.client("owner").post(f"/app/people/{world.person.pk}/erase/",
                                              {"confirm": "yes"})
        assert response.status_code == 422
        assert Person.objects.filter(pk=world.person.pk).exists()

    def test_erase_asks_for_reauthentication_after_the_window(self, world):
        client = world.client("owner")
        with clock.travel(dt.timedelta(minutes=11)):
            response = client.post(f"/app/people/{world.person.pk}/erase/",
                                   {"confirm": "erase"})
        assert (response.status_code, response["Location"]) == (
            302, f"/app/reauth/?next=%2Fapp%2Fpeople%2F{world.person.pk}%2Ferase%2F")
        assert Person.objects.filter(pk=world.person.pk).exists()


@pytest.mark.django_db
class TestAuditPages:
    def test_filter_by_event(self, world):
        actions.do_archive_person(world.person, actor=world.actor("owner"))
        actions.do_update_person(world.person, {"company": "X"}, actor=world.actor("owner"))
        response = world.client("owner").get("/app/audit/", {"event": "person_archived"})
        assert "person archived" in response.text
        assert "person updated" not in response.text

    def test_unknown_filter_is_400(self, world):
        assert world.client("owner").get("/app/audit/", {"colour": "red"}).status_code == 400

    def test_bad_date_is_400(self, world):
        response = world.client("owner").get("/app/audit/", {"since": "yesterday"})
        assert response.status_code == 400
        assert "YYYY-MM-DD" in response.text

    def test_other_accounts_events_are_not_shown(self, world):
        actions.do_update_person(world.person, {"company": "Mine"}, actor=world.actor("owner"))
        actions.do_update_person(world.other_person, {"company": "Theirs"},
                                 actor=world.other_actor())
        response = world.client("owner").get("/app/audit/")
        assert response.status_code == 200
        assert f"<td>person:{world.person.pk} (" in response.text  # the own row is shown
        assert f"<td>person:{world.other_person.pk}" not in response.text

    def test_csv_export_streams_the_accounts_rows_and_is_audited(self, world):
        actions.do_reveal_value(world.person, "email", "ticket 7",
                                actor=world.actor("analyst"))
        actions.do_update_person(world.other_person, {"company": "Theirs"},
                                 actor=world.other_actor())
        response = world.client("owner").get("/app/audit/export.csv")
        assert response.status_code == 200
        assert response.streaming
        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert rows[0][0] == "id"
        events = [r[2] for r in rows[1:]]
        assert "masked personal value revealed" in events
        assert "person updated" not in events  # the other account's event
        assert AuditEvent.objects.filter(event_type=AuditEventType.AUDIT_LOG_EXPORTED).exists()


class TestCsvSafe:
    @pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
    def test_formula_starts_are_quoted(self, value):
        from enclave.people.csvsafe import neutralise

        assert neutralise(value) == "'" + value

    def test_plain_values_are_unchanged(self):
        from enclave.people.csvsafe import neutralise

        assert neutralise("jane") == "jane"


def export_csv(client, **params) -> list[list[str]]:
    response = client.get("/app/people/export.csv", params)
    assert response.status_code == 200
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.django_db
class TestPeopleExport:
    def test_formula_values_are_neutralised(self, world):
        actions.do_update_person(world.person, {"company": "=cmd|' /C calc'!A0"},
                                 actor=world.actor("owner"))
        rows = export_csv(world.client("owner"), cols="company")
        assert rows[1] == [str(world.person.pk), "'=cmd|' /C calc'!A0"]

    def test_analyst_exports_masked_values(self, world):
        rows = export_csv(world.client("analyst"), cols="email,company")
        assert rows[1][1:] == [MASKED["email"], PERSON["company"]]

    def test_export_follows_filters_and_crosses_chunks(self, world, monkeypatch):
        from enclave.people import views

        monkeypatch.setattr(views, "EXPORT_CHUNK", 3)
        Person.objects.bulk_create(Person(account=world.account, email=f"p{i}@example.com",
                                          country="FR") for i in range(10))
        rows = export_csv(world.client("owner"), cols="email", country="FR")
        assert len(rows) == 11
        assert len({r[0] for r in rows[1:]}) == 10

    def test_filter_on_masked_field_is_refused_for_export_too(self, world):
        response = world.client("analyst").get("/app/people/export.csv",
                                               {"email": PERSON["email"]})
        assert response.status_code == 400

    def test_export_asks_for_reauthentication_after_the_window(self, world):
        client = world.client("owner")
        with clock.travel(dt.timedelta(minutes=11)):
            response = client.get("/app/people/export.csv")
        assert (response.status_code, response["Location"]) == (
            302, "/app/reauth/?next=%2Fapp%2Fpeople%2Fexport.csv")
        assert not AuditEvent.objects.filter(event_type=AuditEventType.PEOPLE_EXPORTED).exists()

    def test_export_is_audited_without_filter_values(self, world):
        export_csv(world.client("owner"), country="GB")
        event = AuditEvent.objects.get(event_type=AuditEventType.PEOPLE_EXPORTED)
        assert event.extra_data["filters"] == ["country"]
        assert "GB" not in str(event.extra_data)


@pytest.mark.django_db
class TestColumnsAndFields:
    def test_column_chooser_shows_only_chosen_columns(self, world):
        response = world.client("owner").get("/app/people/", {"col": ["company", "phone"]})
        assert response.status_code == 200
        assert PERSON["phone"] in response.text
        assert PERSON["email"] not in response.text

    def test_chooser_offers_masked_and_visible_columns_to_an_analyst(self, world):
        response = world.client("analyst").get("/app/people/")
        assert 'name="col" value="email"' in response.text
        assert 'name="col" value="company"' in response.text

    def test_owner_defines_a_custom_field_on_the_page(self, world):
        response = world.client("owner").post("/app/people/fields/", {
            "key": "tier", "label": "Tier", "type": "number", "pd_class": "none"})
        assert (response.status_code, response["Location"]) == (302, "/app/people/fields/")
        assert "custom.tier" in world.client("analyst").get("/app/people/fields/").text

    def test_invalid_field_definition_is_422(self, world):
        response = world.client("owner").post("/app/people/fields/", {
            "key": "Bad Key", "type": "colour", "pd_class": "none"})
        assert response.status_code == 422
        assert "lower-case" in response.text
