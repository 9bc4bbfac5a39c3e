"""Data migration 0003: member addresses stored before canonical form are rewritten."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from enclave.identity.models import Member

migration = importlib.import_module("enclave.identity.migrations.0003_canonical_member_emails")


def legacy_members(*emails: str) -> list[Member]:
    """Rows as earlier versions stored them (bulk_create skips today's save())."""
    return Member.objects.bulk_create([Member(email=e, password="!") for e in emails])


@pytest.mark.django_db
class TestCanonicalMemberEmails:
    def test_addresses_are_rewritten_in_canonical_form(self):
        legacy_members("Jane@Example.COM", "bob@ÉXAMPLE.com", "cat@example.com")
        migration.canonicalize(apps, None)
        assert sorted(Member.objects.values_list("email", flat=True)) == [
            "bob@éxample.com", "cat@example.com", "jane@example.com"]

    def test_rewritten_member_is_found_by_any_spelling(self):
        legacy_members("Jane@Example.COM")
        migration.canonicalize(apps, None)
        assert Member.objects.with_email("ＪＡＮＥ@example.com").exists()

    def test_members_sharing_an_address_stop_the_migration_and_nothing_changes(self):
        first, second, _ = legacy_members("a@ｅｘａｍｐｌｅ.com", "a@example.com",
                                          "Other@Example.com")
        with pytest.raises(migration.SharedAddress,
                           match=rf"ids: {first.pk}, {second.pk}\)"):
            migration.canonicalize(apps, None)
        assert Member.objects.filter(email="Other@Example.com").exists()

    def test_error_names_ids_not_addresses(self):
        legacy_members("straße@example.com", "strasse@example.com")
        with pytest.raises(migration.SharedAddress) as caught:
            migration.canonicalize(apps, None)
        assert "example.com" not in str(caught.value)
