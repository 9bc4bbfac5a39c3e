"""CSV import: whole-file validation, preview, per-row errors, all-or-nothing."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from enclave.access.permissions import ALL
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.people import actions, importer
from enclave.people.models import PendingImport, Person
from tests.people.world import MASKED, PERSON


def upload(client, data: bytes):
    return client.post("/app/people/import/",
                       {"file": SimpleUploadedFile("people.csv", data, "text/csv")})


def people_count(world) -> int:
    return Person.objects.filter(account=world.account).count()


@pytest.mark.django_db
class TestPlan:
    def test_valid_file_is_planned_without_writing(self, world):
        plan = importer.plan_import(b"email,first_name\na@example.com,Ann\nb@example.com,Bo\n",
                                    world.account.pk, ALL)
        assert plan.ok
        assert len(plan.rows) == 2
        assert people_count(world) == 1

    def test_bad_encoding_names_the_line(self, world):
        with pytest.raises(importer.ImportFileError, match=r"not UTF-8.*line 2"):
            importer.plan_import(b"email\n\xff\xfe@example.com\n", world.account.pk, ALL)

    def test_nul_character_is_refused_with_its_line(self, world):
        with pytest.raises(importer.ImportFileError, match=r"NUL character \(line 3\)"):
            importer.plan_import(b"email,company\na@example.com,Ok\nb@example.com,A\x00B\n",
                                 world.account.pk, ALL)

    def test_unknown_column_is_refused(self, world):
        with pytest.raises(importer.ImportFileError, match=r"Unknown column.*password"):
            importer.plan_import(b"email,password\na@example.com,x\n", world.account.pk, ALL)

    def test_identifier_column_is_required(self, world):
        with pytest.raises(importer.ImportFileError, match="email or an external_id"):
            importer.plan_import(b"first_name\nAnn\n", world.account.pk, ALL)

    def test_duplicate_email_in_the_file_names_both_lines(self, world):
        plan = importer.plan_import(b"email\na@example.com\nA@example.com\n",
                                    world.account.pk, ALL)
        assert [(e.line, e.column) for e in plan.errors] == [(3, "email")]
        assert "first on line 2" in plan.errors[0].message

    def test_every_bad_row_is_reported(self, world):
        plan = importer.plan_import(b"email,ip\nbad,1.2.3.4\nok@example.com,nope\nx@example.com\n",
                                    world.account.pk, ALL)
        assert [(e.line, e.column) for e in plan.errors] == [(2, "email"), (3, "ip"), (4, "")]

    def test_row_with_several_bad_values_reports_each_of_them(self, world):
        plan = importer.plan_import(b"email,phone,country,consent\n"
                                    b"bad,abc,FRA,maybe\nok@example.com,+44 1,FR,granted\n",
                                    world.account.pk, ALL)
        assert [(e.line, e.column) for e in plan.errors] == [
            (2, "email"), (2, "phone"), (2, "country"), (2, "consent")]
        assert plan.errors[2].message == "Enter a two-letter country code (ISO 3166)."

    def test_lines_of_only_commas_or_spaces_are_skipped(self, world):
        plan = importer.plan_import(b"email,first_name\n,\n  ,  \na@example.com,Ann\n",
                                    world.account.pk, ALL)
        assert plan.ok
        assert plan.lines == [4]

    def test_rows_are_cleaned_as_a_single_save_would_clean_them(self, world):
        actions.do_define_field(world.account, "score", "Score", "number",
                                actor=world.actor("admin"))
        data = {"email": " Ann@Example.COM ", "country": "fr", "consent": "",
                "custom.score": "3.0", "tags": "b, a,,a"}
        text = ",".join(data) + "\n" + ",".join(f'"{v}"' for v in data.values()) + "\n"
        plan = importer.plan_import(text.encode(), world.account.pk, ALL)
        builtin, custom, tags = actions.clean_person_data(world.account.pk, data)
        assert plan.cleaned == [(builtin, custom, tags)]
        assert plan.cleaned[0][0]["email"] == "ann@example.com"

    def test_empty_file_is_refused(self, world):
        with pytest.raises(importer.ImportFileError, match="empty"):
            importer.plan_import(b"", world.account.pk, ALL)

    def test_header_without_rows_is_refused(self, world):
        with pytest.raises(importer.ImportFileError, match="no rows"):
            importer.plan_import(b"email\n", world.account.pk, ALL)


@pytest.mark.django_db
class TestImportAction:
    def test_creates_and_updates_in_one_go_with_one_audit_row(self, world):
        plan = importer.plan_import(
            f"email,company\n{PERSON['email']},Renamed\nnew@example.com,New\n".encode(),
            world.account.pk, ALL)
        counts = actions.do_import_people(world.account, plan, actor=world.actor("user"))
        assert counts == {"created": 1, "updated": 1}
        world.person.refresh_from_db()
        assert world.person.company == "Renamed"
        assert AuditEvent.objects.get(event_type=AuditEventType.PEOPLE_IMPORTED).extra_data[
            "created"] == 1

    def test_time_zones_are_imported_for_new_and_existing_people(self, world):
        plan = importer.plan_import(
            f"email,time_zone\n{PERSON['email']},Europe/Paris\nnew@example.com,"
            "America/New_York\n".encode(), world.account.pk, ALL)
        actions.do_import_people(world.account, plan, actor=world.actor("user"))
        assert dict(Person.objects.filter(account=world.account)
                    .values_list("email", "time_zone")) == {
            PERSON["email"]: "Europe/Paris", "new@example.com": "America/New_York"}

    def test_an_unknown_time_zone_is_a_row_error(self, world):
        plan = importer.plan_import(b"email,time_zone\nz@example.com,Mars/Base\n",
                                    world.account.pk, ALL)
        assert [(e.line, e.column, e.message) for e in plan.errors] == [
            (2, "time_zone", actions.TIME_ZONE_RULE)]

    def test_a_conflict_on_write_rolls_back_the_whole_file(self, world):
        Person.objects.create(account=world.account, email="taken@example.com",
                              external_id="T-1")
        plan = importer.plan_import(
            b"external_id,email\nN-1,fresh@example.com\n"
            + f"{PERSON['external_id']},taken@example.com\n".encode(), world.account.pk, ALL)
        with pytest.raises(ValidationError, match="Line 3"):
            actions.do_import_people(world.account, plan, actor=world.actor("user"))
        assert not Person.objects.filter(email="fresh@example.com").exists()

    def test_analyst_cannot_import(self, world):
        plan = importer.plan_import(b"email\nz@example.com\n", world.account.pk, ALL)
        with pytest.raises(PermissionDenied, match=r"people\.write"):
            actions.do_import_people(world.account, plan, actor=world.actor("analyst"))
        assert not Person.objects.filter(email="z@example.com").exists()


@pytest.mark.django_db
class TestImportPages:
    def test_preview_then_confirm_imports(self, world):
        client = world.client("user")
        preview = upload(client, b"email,first_name\nann@example.com,Ann\n")
        assert re.search(r'<span id="import-rows">1</span>', preview.text)
        assert people_count(world) == 1
        done = client.post("/app/people/import/confirm/")
        assert '<span id="import-created">1</span>' in done.text
        assert Person.objects.filter(email="ann@example.com", account=world.account).exists()

    def test_errors_are_listed_per_row_and_nothing_is_written(self, world):
        response = upload(world.client("user"), b"email\nnot-an-email\nok@example.com\n")
        assert response.status_code == 422
        assert response.text.count('class="row-error"') == 1
        assert people_count(world) == 1

    def test_bad_encoding_is_a_clear_422(self, world):
        response = upload(world.client("user"), b"email\n\xff@example.com\n")
        assert response.status_code == 422
        assert "not UTF-8" in response.text

    def test_confirm_without_preview_is_409(self, world):
        assert world.client("user").post("/app/people/import/confirm/").status_code == 409

    def test_a_column_the_member_sees_masked_is_refused_like_the_edit_form(self, world):
        client = _importer_without_unmask(world)
        response = upload(client,
                          f"email,address\nnew@example.com,{PERSON['address']}\n".encode())
        assert response.status_code == 422
        assert "cannot import column(s) address" in response.text
        assert not PendingImport.objects.exists()
        assert not Person.objects.filter(email="new@example.com").exists()

    def test_preview_uses_the_formatter(self, world):
        response = upload(_importer_without_unmask(world), b"email\nnew@example.com\n")
        assert response.status_code == 200
        assert "new@example.com" in response.text
        assert MASKED["email"] not in response.text


def _importer_without_unmask(world):
    """The viewer, given a custom role with people.write but not people.unmask."""
    from enclave.accounts.actions import do_change_role, do_save_custom_role

    role = do_save_custom_role(world.account, "Importers", ["people.write"],
                               actor=world.actor("owner"))
    do_change_role(world.membership("viewer"), role, actor=world.actor("owner"))
    return world.client("viewer")


@pytest.mark.django_db
class TestHeldImport:
    CSV = b"email,first_name\nheld.person@example.com,Heldina\n"

    def test_the_held_file_is_encrypted_in_the_database_and_not_in_the_session(self, world):
        from django.contrib.sessions.models import Session
        from django.db import connection

        assert upload(world.client("user"), self.CSV).status_code == 200
        with connection.cursor() as cursor:
            cursor.execute("SELECT data FROM people_pendingimport")
            stored = str(cursor.fetchall())
        sessions = [s.get_decoded() for s in Session.objects.all()]
        # Positive controls: the held file is the upload (decrypted through the model) and
        # the member's session exists, so both places were looked at with data in them.
        assert PendingImport.objects.get().data == self.CSV.decode()
        assert len(sessions) == 1
        for text in ("held.person", "Heldina"):
            assert text not in stored
            assert text not in str(sessions)

    def test_confirming_deletes_the_held_file(self, world):
        client = world.client("user")
        upload(client, self.CSV)
        assert client.post("/app/people/import/confirm/").status_code == 200
        assert not PendingImport.objects.exists()
        assert Person.objects.filter(email="held.person@example.com").exists()

    def test_cancelling_deletes_the_held_file_and_imports_nothing(self, world):
        client = world.client("user")
        upload(client, self.CSV)
        response = client.post("/app/people/import/cancel/")
        assert (response.status_code, response["Location"]) == (302, "/app/people/import/")
        assert not PendingImport.objects.exists()
        assert client.post("/app/people/import/confirm/").status_code == 409
        assert not Person.objects.filter(email="held.person@example.com").exists()

    def test_an_expired_held_file_cannot_be_confirmed_and_is_purged(self, world):
        upload(world.client("user"), self.CSV)
        with clock.travel(actions.IMPORT_HOLD + dt.timedelta(seconds=1)):
            client = world.client("user")  # a session still within its idle limit
            assert client.post("/app/people/import/confirm/").status_code == 409
            assert actions.do_purge_expired_imports() == 1
        assert not PendingImport.objects.exists()
        assert not Person.objects.filter(email="held.person@example.com").exists()

    def test_another_member_cannot_confirm_someone_elses_held_file(self, world):
        upload(world.client("user"), self.CSV)
        assert world.client("admin").post("/app/people/import/confirm/").status_code == 409
        assert not Person.objects.filter(email="held.person@example.com").exists()
        assert PendingImport.objects.count() == 1

    def test_a_new_upload_replaces_the_members_held_file(self, world):
        client = world.client("user")
        upload(client, self.CSV)
        upload(client, b"email\nsecond@example.com\n")
        assert PendingImport.objects.count() == 1
        client.post("/app/people/import/confirm/")
        assert Person.objects.filter(email="second@example.com").exists()
        assert not Person.objects.filter(email="held.person@example.com").exists()
