"""People actions: create, update, upsert, archive, erase, reveal, custom fields."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from enclave.backups.models import ErasureTombstone
from enclave.core.models import AuditEvent, AuditEventType
from enclave.people import actions
from enclave.people.models import FieldDefinition, Person, PersonTag, Tag
from tests.people.world import PERSON


def create(world, data, role="user"):
    return actions.do_create_person(world.account, data, actor=world.actor(role))


@pytest.mark.django_db
class TestCreatePerson:
    def test_creates_with_normalised_values_and_tags(self, world):
        person = create(world, {"email": "New@Example.COM", "country": "fr",
                                "tags": "vip, newsletter"})
        assert (person.email, person.country) == ("new@example.com", "FR")
        assert sorted(PersonTag.objects.filter(person=person)
                      .values_list("tag__name", flat=True)) == ["newsletter", "vip"]

    def test_audit_names_fields_never_values(self, world):
        person = create(world, {"email": "new@example.com", "first_name": "Ann"})
        event = AuditEvent.objects.get(event_type=AuditEventType.PERSON_CREATED)
        assert event.target_id == str(person.pk)
        assert event.extra_data == {"fields": ["email", "first_name"]}
        assert "new@example.com" not in str(event.extra_data)

    def test_every_bad_field_is_reported_and_nothing_written(self, world):
        with pytest.raises(ValidationError) as info:
            create(world, {"email": "not-an-email", "ip": "999.1.1.1", "country": "FRA",
                           "nickname": "x"})
        assert set(info.value.message_dict) == {"email", "ip", "country", "nickname"}
        assert Person.objects.filter(account=world.account).count() == 1

    def test_a_time_zone_is_kept_as_the_tz_database_spells_it(self, world):
        person = create(world, {"email": "tz@example.com", "time_zone": " Asia/Tokyo "})
        assert person.time_zone == "Asia/Tokyo"

    @pytest.mark.parametrize("zone", ["Europe/Pariss", "europe/paris", "EST5EDT",
                                      "../../etc/passwd", "Factory", "+01:00"])
    def test_a_time_zone_that_names_none_is_refused(self, world, zone):
        with pytest.raises(ValidationError) as info:
            create(world, {"email": "tz@example.com", "time_zone": zone})
        assert info.value.message_dict == {"time_zone": [actions.TIME_ZONE_RULE]}
        assert not Person.objects.filter(email="tz@example.com").exists()

    def test_a_time_zone_the_locked_tz_database_lacks_is_refused_whatever_the_host_has(
            self, world, tmp_path):
        import zoneinfo
        from importlib import resources

        # The host's zoneinfo holds a zone file the locked tz database does not name.
        (tmp_path / "Mars").mkdir()
        (tmp_path / "Mars" / "Olympus_Mons").write_bytes(
            resources.files("tzdata.zoneinfo").joinpath("UTC").read_bytes())
        zoneinfo.reset_tzpath([str(tmp_path)])
        actions.time_zone_names.cache_clear()
        actions._zone_set.cache_clear()
        try:
            with pytest.raises(ValidationError) as info:
                create(world, {"email": "tz@example.com", "time_zone": "Mars/Olympus_Mons"})
        finally:
            zoneinfo.reset_tzpath()
            actions.time_zone_names.cache_clear()
            actions._zone_set.cache_clear()
        assert info.value.message_dict == {"time_zone": [actions.TIME_ZONE_RULE]}

    def test_duplicate_email_is_a_clear_error(self, world):
        with pytest.raises(ValidationError, match="Another person has this email"):
            create(world, {"email": PERSON["email"]})
        assert Person.objects.filter(account=world.account).count() == 1

    def test_analyst_cannot_create(self, world):
        with pytest.raises(PermissionDenied, match=r"people\.write"):
            create(world, {"email": "a@example.com"}, role="analyst")
        assert not Person.objects.filter(email="a@example.com").exists()


@pytest.mark.django_db
class TestCustomFields:
    def define(self, world, key, field_type, **kw):
        return actions.do_define_field(world.account, key, key.title(), field_type,
                                       actor=world.actor("owner"), **kw)

    @pytest.mark.parametrize(("field_type", "given", "stored"), [
        ("text", " hello ", "hello"),
        ("number", "42", 42),
        ("number", "2.5", 2.5),
        ("date", "2026-01-31", "2026-01-31"),
        ("boolean", "yes", True),
        ("select", "gold", "gold"),
    ])
    def test_value_is_stored_by_type(self, world, field_type, given, stored):
        self.define(world, "extra", field_type, options=["gold", "silver"])
        person = create(world, {"email": "c@example.com", "custom.extra": given})
        assert person.custom == {"extra": stored}

    @pytest.mark.parametrize(("field_type", "given", "message"), [
        ("number", "many", "Enter a number"),
        ("number", "nan", "finite"),
        ("date", "31/01/2026", "YYYY-MM-DD"),
        ("boolean", "perhaps", "yes or no"),
        ("select", "bronze", "Choose one of"),
    ])
    def test_invalid_value_is_refused(self, world, field_type, given, message):
        self.define(world, "extra", field_type, options=["gold"])
        with pytest.raises(ValidationError, match=message):
            create(world, {"email": "c@example.com", "custom.extra": given})

    def test_undefined_custom_field_is_unknown(self, world):
        with pytest.raises(ValidationError, match="Unknown field"):
            create(world, {"custom.nope": "1"})

    def test_select_needs_options(self, world):
        with pytest.raises(ValidationError, match="at least one option"):
            self.define(world, "tier", "select")
        assert not FieldDefinition.objects.exists()

    def test_definition_is_audited(self, world):
        self.define(world, "tier", "text", pd_class="none")
        assert AuditEvent.objects.get(event_type=AuditEventType.FIELD_DEFINED).extra_data == {
            "key": "tier", "type": "text", "pd_class": "none", "encrypt_at_rest": False}


@pytest.mark.django_db
class TestUpdateAndUpsert:
    def test_update_changes_only_given_fields(self, world):
        actions.do_update_person(world.person, {"company": "Initech"},
                                 actor=world.actor("user"))
        world.person.refresh_from_db()
        assert (world.person.company, world.person.email) == ("Initech", PERSON["email"])
        assert AuditEvent.objects.get(
            event_type=AuditEventType.PERSON_UPDATED).extra_data == {"fields": ["company"]}

    def test_no_change_writes_no_audit_row(self, world):
        actions.do_update_person(world.person, {"company": PERSON["company"]},
                                 actor=world.actor("user"))
        assert not AuditEvent.objects.filter(event_type=AuditEventType.PERSON_UPDATED).exists()

    def test_upsert_by_external_id_updates(self, world):
        person, created = actions.do_upsert_person(
            world.account, {"external_id": PERSON["external_id"], "company": "Initech"},
            actor=world.actor("user"))
        assert (created, person.pk, person.company) == (False, world.person.pk, "Initech")

    def test_upsert_by_email_updates(self, world):
        person, created = actions.do_upsert_person(
            world.account, {"email": PERSON["email"].upper(), "first_name": "Xavi"},
            actor=world.actor("user"))
        assert (created, person.pk) == (False, world.person.pk)

    def test_upsert_new_email_creates(self, world):
        person, created = actions.do_upsert_person(world.account, {"email": "n@example.com"},
                                                   actor=world.actor("user"))
        assert created
        assert Person.objects.get(account=world.account, email="n@example.com") == person

    def test_upsert_never_touches_another_account(self, world):
        person, created = actions.do_upsert_person(
            world.account, {"email": "someone@other.example", "company": "Mine"},
            actor=world.actor("user"))
        assert (created, person.account, person.company) == (True, world.account, "Mine")
        world.other_person.refresh_from_db()
        assert (world.other_person.account, world.other_person.company) == (world.other, "")


@pytest.mark.django_db
class TestArchive:
    def test_archive_sets_archived_at_once(self, world):
        actions.do_archive_person(world.person, actor=world.actor("user"))
        actions.do_archive_person(world.person, actor=world.actor("user"))
        world.person.refresh_from_db()
        assert world.person.archived_at is not None
        assert AuditEvent.objects.filter(event_type=AuditEventType.PERSON_ARCHIVED).count() == 1


@pytest.mark.django_db
class TestErase:
    def test_person_gone_audit_scrubbed_tombstone_kept(self, world):
        actions.do_update_person(world.person, {"company": "Initech"},
                                 actor=world.actor("user"))
        actions.do_reveal_value(world.person, "email", "Customer called about Xaviera",
                                actor=world.actor("analyst"))
        person_id = world.person.pk
        actions.do_erase_person(world.person, actor=world.actor("admin"))
        assert not Person.objects.filter(pk=person_id).exists()
        old = AuditEvent.objects.filter(target_type="person", target_id=str(person_id)).exclude(
            event_type=AuditEventType.PERSON_ERASED)
        assert old.count() == 2
        assert all(e.scrubbed and e.extra_data == {} for e in old)
        assert ErasureTombstone.objects.filter(subject="person", account_id=world.account.pk,
                                               object_id=person_id).exists()

    def test_erasure_removes_tags_but_not_the_accounts_tag_list(self, world):
        tag = Tag.objects.create(account=world.account, name="vip")
        PersonTag.objects.create(person=world.person, tag=tag)
        actions.do_erase_person(world.person, actor=world.actor("owner"))
        assert not PersonTag.objects.exists()
        assert Tag.objects.filter(pk=tag.pk).exists()

    def test_other_peoples_audit_rows_are_untouched(self, world):
        actions.do_update_person(world.other_person, {"company": "Theirs"},
                                 actor=world.other_actor())
        actions.do_update_person(world.person, {"company": "Mine"}, actor=world.actor("owner"))
        actions.do_erase_person(world.person, actor=world.actor("owner"))
        scrubbed = dict(AuditEvent.objects.filter(event_type=AuditEventType.PERSON_UPDATED)
                        .values_list("target_id", "scrubbed"))
        assert scrubbed == {str(world.other_person.pk): False, str(world.person.pk): True}

    def test_user_cannot_erase(self, world):
        with pytest.raises(PermissionDenied, match=r"people\.erase"):
            actions.do_erase_person(world.person, actor=world.actor("user"))
        assert Person.objects.filter(pk=world.person.pk).exists()

    def test_erasure_removes_the_persons_events(self, world):
        from enclave.events.models import Event

        Event.objects.create(account=world.account, person=world.person, type="track",
                             name="Viewed pricing", occurred_at=world.person.created_at)
        actions.do_erase_person(world.person, actor=world.actor("owner"))
        assert not Event.objects.exists()

    def test_erasure_discards_held_imports_of_the_account(self, world):
        from enclave.people import importer
        from enclave.people.models import PendingImport

        data = f"email\n{PERSON['email']}\n"
        plan = importer.plan_import(data.encode(), world.account.pk, world.actor("user").perms)
        actions.do_stage_import(world.account, data, plan, actor=world.actor("user"))
        assert PendingImport.objects.filter(account=world.account).count() == 1
        actions.do_erase_person(world.person, actor=world.actor("owner"))
        assert not PendingImport.objects.exists()

    def test_erasing_in_another_account_is_refused(self, world):
        with pytest.raises(PermissionDenied, match="another account"):
            actions.do_erase_person(world.other_person, actor=world.actor("owner"))
        assert Person.objects.filter(pk=world.other_person.pk).exists()


@pytest.mark.django_db
class TestReveal:
    def test_reveal_returns_the_value_and_audits_the_reason(self, world):
        value = actions.do_reveal_value(world.person, "phone", "call-back request",
                                        actor=world.actor("analyst"))
        assert value == PERSON["phone"]
        event = AuditEvent.objects.get(event_type=AuditEventType.PERSON_VALUE_REVEALED)
        assert event.extra_data == {"field": "phone", "reason": "call-back request"}

    def test_reason_is_required(self, world):
        with pytest.raises(ValidationError, match="why"):
            actions.do_reveal_value(world.person, "phone", "  ", actor=world.actor("analyst"))

    def test_viewer_cannot_reveal(self, world):
        with pytest.raises(PermissionDenied, match=r"people\.unmask"):
            actions.do_reveal_value(world.person, "phone", "x", actor=world.actor("viewer"))
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.PERSON_VALUE_REVEALED).exists()

    def test_member_of_another_account_cannot_reveal(self, world):
        with pytest.raises(PermissionDenied, match="another account"):
            actions.do_reveal_value(world.person, "phone", "x", actor=world.other_actor())
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.PERSON_VALUE_REVEALED).exists()
