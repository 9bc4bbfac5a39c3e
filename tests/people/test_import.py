"""CSV import: whole-file validation, preview, per-row errors, all-or-nothing."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from enclave.core.models import AuditEvent, AuditEventType
from enclave.people import actions, importer
from enclave.people.models import Person
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
                                    world.account.pk)
        assert plan.ok
        assert len(plan.rows) == 2
        assert people_count(world) == 1

    def test_bad_encoding_names_the_line(self, world):
        with pytest.raises(importer.ImportFileError, match=r"not UTF-8.*line 2"):
            importer.plan_import(b"email\n\xff\xfe@example.com\n", world.account.pk)

    def test_nul_character_is_refused_with_its_line(self, world):
        with pytest.raises(importer.ImportFileError, match=r"NUL character \(line 3\)"):
            importer.plan_import(b"email,company\na@example.com,Ok\nb@example.com,A\x00B\n",
                                 world.account.pk)

    def test_unknown_column_is_refused(self, world):
        with pytest.raises(importer.ImportFileError, match=r"Unknown column.*password"):
            importer.plan_import(b"email,password\na@example.com,x\n", world.account.pk)

    def test_identifier_column_is_required(self, world):
        with pytest.raises(importer.ImportFileError, match="email or an external_id"):
            importer.plan_import(b"first_name\nAnn\n", world.account.pk)

    def test_duplicate_email_in_the_file_names_both_lines(self, world):
        plan = importer.plan_import(b"email\na@example.com\nA@example.com\n",
                                    world.account.pk)
        assert [(e.line, e.column) for e in plan.errors] == [(3, "email")]
        assert "first on line 2" in plan.errors[0].message

    def test_every_bad_row_is_reported(self, world):
        plan = importer.plan_import(b"email,ip\nbad,1.2.3.4\nok@example.com,nope\nx@example.com\n",
                                    world.account.pk)
        assert [(e.line, e.column) for e in plan.errors] == [(2, "email"), (3, "ip"), (4, "")]

    def test_row_with_several_bad_values_reports_each_of_them(self, world):
        plan = importer.plan_import(b"email,phone,country,consent\n"
                                    b"bad,abc,FRA,maybe\nok@example.com,+44 1,FR,granted\n",
                                    world.account.pk)
        assert [(e.line, e.column) for e in plan.errors] == [
            (2, "email"), (2, "phone"), (2, "country"), (2, "consent")]
        assert plan.errors[2].message == "Enter a two-letter country code (ISO 3166)."

    def test_lines_of_only_commas_or_spaces_are_skipped(self, world):
        plan = importer.plan_import(b"email,first_name\n,\n  ,  \na@example.com,Ann\n",
                                    world.account.pk)
        assert plan.ok
        assert plan.lines == [4]

    def test_rows_are_cleaned_as_a_single_save_would_clean_them(self, world):
        actions.do_define_field(world.account, "score", "Score", "number",
                                actor=world.members["admin"])
        data = {"email": " Ann@Example.COM ", "country": "fr", "consent": "",
                "custom.score": "3.0", "tags": "b, a,,a"}
        text = ",".join(data) + "\n" + ",".join(f'"{v}"' for v in data.values()) + "\n"
        plan = importer.plan_import(text.encode(), world.account.pk)
        builtin, custom, tags = actions.clean_person_data(world.account.pk, data)
        assert plan.cleaned == [(builtin, custom, tags)]
        assert plan.cleaned[0][0]["email"] == "ann@example.com"

    def test_empty_file_is_refused(self, world):
        with pytest.raises(importer.ImportFileError, match="empty"):
            importer.plan_import(b"", world.account.pk)

    def test_header_without_rows_is_refused(self, world):
        with pytest.raises(importer.ImportFileError, match="no rows"):
            importer.plan_import(b"email\n", world.account.pk)


@pytest.mark.django_db
class TestImportAction:
    def test_creates_and_updates_in_one_go_with_one_audit_row(self, world):
        plan = importer.plan_import(
            f"email,company\n{PERSON['email']},Renamed\nnew@example.com,New\n".encode(),
            world.account.pk)
        counts = actions.do_import_people(world.account, plan, actor=world.members["user"])
        assert counts == {"created": 1, "updated": 1}
        world.person.refresh_from_db()
        assert world.person.company == "Renamed"
        assert AuditEvent.objects.get(event_type=AuditEventType.PEOPLE_IMPORTED).extra_data[
            "created"] == 1

    def test_a_conflict_on_write_rolls_back_the_whole_file(self, world):
        Person.objects.create(account=world.account, email="taken@example.com",
                              external_id="T-1")
        plan = importer.plan_import(
            b"external_id,email\nN-1,fresh@example.com\n"
            + f"{PERSON['external_id']},taken@example.com\n".encode(), world.account.pk)
        with pytest.raises(ValidationError, match="Line 3"):
            actions.do_import_people(world.account, plan, actor=world.members["user"])
        assert not Person.objects.filter(email="fresh@example.com").exists()

    def test_analyst_cannot_import(self, world):
        plan = importer.plan_import(b"email\nz@example.com\n", world.account.pk)
        with pytest.raises(PermissionDenied, match=r"people\.write"):
            actions.do_import_people(world.account, plan, actor=world.members["analyst"])


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

    def test_preview_uses_the_formatter(self, world):
        from enclave.accounts.actions import do_change_role, do_save_custom_role

        role = do_save_custom_role(world.account, "Importers", ["people.write"],
                                   actor=world.members["owner"])
        do_change_role(world.membership("viewer"), role, actor=world.members["owner"])
        response = upload(world.client("viewer"),
                          f"email,address\nnew@example.com,{PERSON['address']}\n".encode())
        assert "new@example.com" in response.text
        assert PERSON["address"] not in response.text  # sensitive: masked without unmask
        assert MASKED["email"] not in response.text
