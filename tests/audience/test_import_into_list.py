"""A people import that also puts everyone in its file on a static list: offered to
members who may manage segments, in the import's one transaction (all or nothing)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from enclave.audience import actions
from enclave.audience.models import Segment, SegmentMember, SegmentTransition
from enclave.core.models import AuditEvent, AuditEventType
from enclave.people import actions as people_actions
from enclave.people import importer
from enclave.people.models import PendingImport, Person
from tests.people.world import PERSON

FILE = f"email,first_name\nnew@example.com,New\n{PERSON['email']},Known\n".encode()


def upload(client, data: bytes = FILE):
    return client.post("/app/people/import/",
                       {"file": SimpleUploadedFile("people.csv", data, "text/csv")})


def a_list(world, name="Fair leads"):
    return actions.do_create_segment(world.account, name, "static",
                                     actor=world.actor("owner"))


def members(segment) -> set[str]:
    return set(Person.objects.filter(pk__in=SegmentMember.objects.filter(
        segment=segment).values("person_id")).values_list("email", flat=True))


def people_writer(world):
    """A member who may import people but not manage segments."""
    from enclave.accounts.actions import do_change_role, do_save_custom_role

    role = do_save_custom_role(world.account, "Importers", ["people.read", "people.write"],
                               actor=world.actor("owner"))
    do_change_role(world.membership("analyst"), role, actor=world.actor("owner"))
    return world.client("analyst")


@pytest.mark.django_db
class TestImportIntoList:
    def test_the_preview_offers_the_accounts_lists_and_no_dynamic_segment(self, world):
        listed = a_list(world)
        actions.do_create_segment(world.account, "Dynamic one", "dynamic",
                                  {"type": "tag", "tag": "vip"}, actor=world.actor("owner"))
        page = upload(world.client("user")).text
        assert f'<option value="{listed.pk}">Fair leads</option>' in page
        assert "Dynamic one" not in page

    def test_everyone_in_the_file_new_or_known_joins_the_list(self, world):
        listed = a_list(world)
        client = world.client("user")
        upload(client)
        done = client.post("/app/people/import/confirm/", {"list": str(listed.pk)})
        assert done.status_code == 200
        assert members(listed) == {"new@example.com", PERSON["email"]}
        assert SegmentTransition.objects.filter(segment=listed, kind="entered").count() == 2

    def test_the_list_audit_row_says_how_many_and_that_it_came_from_an_import(self, world):
        listed = a_list(world)
        client = world.client("user")
        upload(client)
        client.post("/app/people/import/confirm/", {"list": str(listed.pk)})
        event = AuditEvent.objects.get(event_type=AuditEventType.SEGMENT_PEOPLE_ADDED)
        assert (event.target_id, event.extra_data) == (str(listed.pk),
                                                        {"via": "import", "count": 2})

    def test_people_already_in_the_list_are_not_added_again(self, world):
        listed = a_list(world)
        actions.do_add_segment_people(listed, [world.person.pk], actor=world.actor("owner"))
        client = world.client("user")
        upload(client)
        client.post("/app/people/import/confirm/", {"list": str(listed.pk)})
        assert SegmentMember.objects.filter(segment=listed).count() == 2
        assert SegmentTransition.objects.filter(segment=listed,
                                                person=world.person).count() == 1

    def test_a_dynamic_segment_built_on_the_list_follows_at_once(self, world):
        listed = a_list(world)
        outer = actions.do_create_segment(world.account, "On the list", "dynamic",
                                          {"type": "segment", "segment": listed.pk},
                                          actor=world.actor("owner"))
        client = world.client("user")
        upload(client)
        client.post("/app/people/import/confirm/", {"list": str(listed.pk)})
        assert members(outer) == {"new@example.com", PERSON["email"]}

    def test_no_list_chosen_imports_without_adding_anyone(self, world):
        listed = a_list(world)
        client = world.client("user")
        upload(client)
        client.post("/app/people/import/confirm/", {"list": ""})
        assert Person.objects.filter(email="new@example.com").exists()
        assert not SegmentMember.objects.filter(segment=listed).exists()


@pytest.mark.django_db
class TestImportIntoListRefusals:
    def test_a_member_without_segments_manage_is_not_offered_lists(self, world):
        a_list(world)
        page = upload(people_writer(world)).text
        assert 'id="import-rows"' in page
        assert 'id="import-list"' not in page

    def test_a_member_without_segments_manage_naming_a_list_imports_nothing(self, world):
        listed = a_list(world)
        client = people_writer(world)
        upload(client)
        response = client.post("/app/people/import/confirm/", {"list": str(listed.pk)})
        assert response.status_code == 422
        assert not Person.objects.filter(email="new@example.com").exists()
        assert not SegmentMember.objects.exists()
        assert PendingImport.objects.exists()  # the held file waits for a new choice

    @pytest.mark.parametrize("which", ["other account", "dynamic", "missing", "junk"])
    def test_a_list_that_is_not_one_of_the_accounts_lists_imports_nothing(self, world,
                                                                           which):
        if which == "other account":
            value = str(Segment.objects.create(account=world.other, name="Theirs",
                                               kind="static").pk)
        elif which == "dynamic":
            value = str(actions.do_create_segment(world.account, "Dyn", "dynamic",
                                                  {"type": "tag", "tag": "vip"},
                                                  actor=world.actor("owner")).pk)
        else:
            value = "999999" if which == "missing" else "1 OR 1=1"
        client = world.client("user")
        upload(client)
        response = client.post("/app/people/import/confirm/", {"list": value})
        assert response.status_code == 422
        assert "Choose one of the lists offered." in response.text
        assert not Person.objects.filter(email="new@example.com").exists()
        assert not SegmentMember.objects.exists()

    def test_a_list_deleted_before_the_write_rolls_back_the_whole_import(self, world):
        listed = a_list(world)
        actor = world.actor("user")
        add = actions.LISTS.adder(actor, str(listed.pk))
        Segment.objects.filter(pk=listed.pk).delete()
        plan = importer.plan_import(FILE, world.account.pk, actor.perms)
        with pytest.raises(ValidationError, match="deleted meanwhile"):
            people_actions.do_import_people(world.account, plan, actor=actor, then=add)
        assert not Person.objects.filter(email="new@example.com").exists()
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.PEOPLE_IMPORTED).exists()
