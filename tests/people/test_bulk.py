"""The bulk write behind the CSV import (people.bulk via actions.do_import_people):
the same outcome as upserting row by row, in a handful of queries."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from enclave.access.permissions import ALL
from enclave.core.models import AuditEvent, AuditEventType
from enclave.people import actions, importer
from enclave.people.models import Person, PersonTag, Tag, sealed_values
from tests.people.world import PERSON

SECRET = "allergic to penicillin"


def run_import(world, text: str) -> dict:
    plan = importer.plan_import(text.encode(), world.account.pk, ALL)
    assert plan.ok, plan.errors
    return actions.do_import_people(world.account, plan, actor=world.actor("user"))


def people(world) -> dict[str, Person]:
    return {p.email: p for p in Person.objects.filter(account=world.account)}


def tags_of(person: Person) -> list[str]:
    return sorted(PersonTag.objects.filter(person=person).values_list("tag__name", flat=True))


@pytest.mark.django_db
class TestBulkUpsert:
    def test_mixed_new_and_existing_rows_are_created_and_updated(self, world):
        other = Person.objects.create(account=world.account, email="old@example.com",
                                      external_id="K-1", company="Before")
        counts = run_import(world, "external_id,email,company\n"
                                   f"{PERSON['external_id']},{PERSON['email']},Renamed\n"
                                   "K-1,new-address@example.com,After\n"
                                   ",fresh@example.com,Fresh\n")
        assert counts == {"created": 1, "updated": 2}
        world.person.refresh_from_db()
        other.refresh_from_db()
        assert (world.person.company, other.company, other.email) == (
            "Renamed", "After", "new-address@example.com")
        assert people(world)["fresh@example.com"].company == "Fresh"

    def test_row_matching_by_email_updates_that_person(self, world):
        run_import(world, f"email,first_name\n{PERSON['email'].upper()},Renamed\n")
        world.person.refresh_from_db()
        assert world.person.first_name == "Renamed"
        assert Person.objects.filter(account=world.account).count() == 1

    def test_unknown_external_id_falls_back_to_email(self, world):
        by_email = Person.objects.create(account=world.account, email="e@example.com")
        counts = run_import(world, "external_id,email,company\nZ-9,e@example.com,Co\n")
        by_email.refresh_from_db()
        assert counts == {"created": 0, "updated": 1}
        assert (by_email.external_id, by_email.company) == ("Z-9", "Co")

    def test_unchanged_row_counts_as_updated_but_keeps_updated_at(self, world):
        before = world.person.updated_at
        counts = run_import(world, f"email,company\n{PERSON['email']},{PERSON['company']}\n")
        world.person.refresh_from_db()
        assert counts == {"created": 0, "updated": 1}
        assert world.person.updated_at == before

    def test_same_values_in_another_account_are_untouched(self, world):
        run_import(world, "email,company\nsomeone@other.example,Mine\n")
        world.other_person.refresh_from_db()
        assert world.other_person.company == ""
        assert Person.objects.filter(account=world.account,
                                     email="someone@other.example").exists()

    def test_one_audit_row_for_the_whole_file(self, world):
        run_import(world, "email\n" + "".join(f"p{i}@example.com\n" for i in range(30)))
        assert AuditEvent.objects.filter(event_type=AuditEventType.PEOPLE_IMPORTED).count() == 1

    def test_queries_are_per_batch_not_per_row(self, world):
        Person.objects.create(account=world.account, email="q0@example.com")
        text = "email,tags\n" + "".join(f"q{i}@example.com,vip\n" for i in range(300))
        plan = importer.plan_import(text.encode(), world.account.pk, ALL)
        with CaptureQueriesContext(connection) as captured:
            actions.do_import_people(world.account, plan, actor=world.actor("user"))
        assert len(captured) < 30  # row by row this was over 1,000
        assert PersonTag.objects.filter(tag__name="vip").count() == 300


@pytest.mark.django_db
class TestBulkErrors:
    def test_duplicate_external_id_in_the_file_is_a_row_error(self, world):
        plan = importer.plan_import(b"external_id,email\nX-1,a@example.com\nX-1,b@example.com\n",
                                    world.account.pk, ALL)
        assert [(e.line, e.column) for e in plan.errors] == [(3, "external_id")]

    def test_plan_with_errors_writes_nothing(self, world):
        plan = importer.plan_import(b"email\ngood@example.com\nbad\n", world.account.pk, ALL)
        with pytest.raises(ValidationError, match="nothing was imported"):
            actions.do_import_people(world.account, plan, actor=world.actor("user"))
        assert not Person.objects.filter(email="good@example.com").exists()

    def test_conflict_late_in_the_file_writes_nothing_at_all(self, world):
        Person.objects.create(account=world.account, email="taken@example.com")
        text = ("external_id,email,tags\n"
                + "".join(f"N-{i},n{i}@example.com,new-tag\n" for i in range(50))
                + f"{PERSON['external_id']},taken@example.com,\n")
        plan = importer.plan_import(text.encode(), world.account.pk, ALL)
        with pytest.raises(ValidationError, match="Line 52: Another person has this email"):
            actions.do_import_people(world.account, plan, actor=world.actor("user"))
        assert Person.objects.filter(account=world.account).count() == 2
        assert not Tag.objects.filter(name="new-tag").exists()
        assert not AuditEvent.objects.filter(event_type=AuditEventType.PEOPLE_IMPORTED).exists()

    def test_address_given_up_earlier_in_the_file_may_be_taken(self, world):
        other = Person.objects.create(account=world.account, email="moving@example.com",
                                      external_id="M-1")
        counts = run_import(world, "external_id,email\nM-1,moved@example.com\n"
                                   f"{PERSON['external_id']},moving@example.com\n")
        other.refresh_from_db()
        world.person.refresh_from_db()
        assert counts == {"created": 0, "updated": 2}
        assert (other.email, world.person.email) == ("moved@example.com", "moving@example.com")

    def test_new_person_may_take_an_address_given_up_in_the_file(self, world):
        run_import(world, f"external_id,email\n{PERSON['external_id']},changed@example.com\n"
                          f"NEW-1,{PERSON['email']}\n")
        assert people(world)[PERSON["email"]].external_id == "NEW-1"

    def test_address_taken_before_it_is_given_up_is_refused(self, world):
        Person.objects.create(account=world.account, email="later@example.com",
                              external_id="L-1")
        plan = importer.plan_import(
            (f"external_id,email\n{PERSON['external_id']},later@example.com\n"
             "L-1,elsewhere@example.com\n").encode(), world.account.pk, ALL)
        with pytest.raises(ValidationError, match="Line 2"):
            actions.do_import_people(world.account, plan, actor=world.actor("user"))
        world.person.refresh_from_db()
        assert world.person.email == PERSON["email"]


@pytest.mark.django_db
class TestBulkTagsAndCustomFields:
    def test_tags_land_on_new_and_existing_people(self, world):
        actions.do_update_person(world.person, {"tags": "old, keep"},
                                 actor=world.actor("user"))
        run_import(world, f"email,tags\n{PERSON['email']},\"keep,new\"\nn@example.com,new\n")
        assert tags_of(world.person) == ["keep", "new"]
        assert tags_of(people(world)["n@example.com"]) == ["new"]

    def test_empty_tags_cell_clears_the_tags(self, world):
        actions.do_update_person(world.person, {"tags": "old"}, actor=world.actor("user"))
        run_import(world, f"email,tags\n{PERSON['email']},\n")
        assert tags_of(world.person) == []

    def test_tags_of_another_account_are_not_reused(self, world):
        other_tag = Tag.objects.create(account=world.other, name="shared")
        run_import(world, "email,tags\nn@example.com,shared\n")
        mine = Tag.objects.get(account=world.account, name="shared")
        assert mine.pk != other_tag.pk
        assert not PersonTag.objects.filter(tag=other_tag).exists()

    def test_custom_fields_land(self, world):
        owner = world.actor("owner")
        actions.do_define_field(world.account, "plan", "Plan", "select", options=["gold"],
                                pd_class="none", actor=owner)
        actions.do_define_field(world.account, "score", "Score", "number", actor=owner)
        run_import(world, f"email,custom.plan,custom.score\n{PERSON['email']},gold,7\n"
                          "n@example.com,,2.5\n")
        world.person.refresh_from_db()
        assert world.person.custom == {"plan": "gold", "score": 7}
        assert people(world)["n@example.com"].custom == {"score": 2.5}

    def test_encrypted_custom_field_is_sealed_for_new_and_existing_people(self, world):
        actions.do_define_field(world.account, "health", "Health", "text",
                                pd_class="sensitive", encrypt_at_rest=True,
                                actor=world.actor("owner"))
        run_import(world, f"email,custom.health\n{PERSON['email']},{SECRET}\n"
                          f"n@example.com,{SECRET} too\n")
        stored = dict(Person.objects.filter(account=world.account)
                      .values_list("email", "sealed_custom"))
        assert all(str(v).startswith("ek1:fields:") and SECRET not in v
                   for v in stored.values())
        fresh = people(world)
        assert sealed_values(fresh[PERSON["email"]]) == {"health": SECRET}
        assert sealed_values(fresh["n@example.com"]) == {"health": f"{SECRET} too"}

    def test_encrypted_custom_field_can_be_cleared(self, world):
        actions.do_define_field(world.account, "health", "Health", "text",
                                pd_class="sensitive", encrypt_at_rest=True,
                                actor=world.actor("owner"))
        actions.do_update_person(world.person, {"custom.health": SECRET},
                                 actor=world.actor("owner"))
        run_import(world, f"email,custom.health\n{PERSON['email']},\n")
        assert Person.objects.filter(pk=world.person.pk).values_list(
            "sealed_custom", flat=True).get() is None


@pytest.mark.django_db
class TestBulkValues:
    def test_awkward_characters_survive_the_bulk_write(self, world):
        company, address = "Tab\there \\N back\\slash", "Line one\nline two\r\n"
        run_import(world, f'email,company,address,ip\nn@example.com,"{company}","{address}",'
                          "2001:db8::1\n")
        person = people(world)["n@example.com"]
        assert (person.company, person.address, person.ip) == (
            company, address.strip(), "2001:db8::1")

    def test_existing_people_with_awkward_keys_are_found_and_updated(self, world):
        keys = ['q"uote', "back\\slash", "{brace},comma", "NULL", " "]
        for n, key in enumerate(keys):
            Person.objects.create(account=world.account, email=f"k{n}@example.com",
                                  external_id=key.strip() or "x")
        rows = "".join('"{}",Renamed\n'.format(k.strip().replace('"', '""') or "x")
                       for k in keys)
        assert run_import(world, "external_id,company\n" + rows) == {"created": 0,
                                                                      "updated": 5}
        assert set(Person.objects.filter(account=world.account, email__startswith="k")
                   .values_list("company", flat=True)) == {"Renamed"}

    def test_new_people_get_distinct_row_ids_and_timestamps(self, world):
        run_import(world, "email\na@example.com\nb@example.com\n")
        rows = Person.objects.filter(account=world.account, email__in=["a@example.com",
                                                                       "b@example.com"])
        assert len({p.row_id for p in rows}) == 2
        assert all(p.created_at == p.updated_at and p.archived_at is None for p in rows)

    def test_existing_people_are_updated_with_every_kind_of_value(self, world):
        other = Person.objects.create(account=world.account, email="o@example.com",
                                      ip="192.0.2.1", custom={"keep": 1})
        actions.do_define_field(world.account, "plan", "Plan", "text", pd_class="none",
                                actor=world.actor("owner"))
        run_import(world, "email,ip,company,custom.plan\n"
                          f'{PERSON["email"]},2001:db8::7,"Tab\there",gold\n'
                          "o@example.com,,Plain,\n")
        world.person.refresh_from_db()
        other.refresh_from_db()
        assert (world.person.ip, world.person.company, world.person.custom["plan"]) == (
            "2001:db8::7", "Tab\there", "gold")
        assert (other.ip, other.company, other.custom) == (None, "Plain", {"keep": 1})
