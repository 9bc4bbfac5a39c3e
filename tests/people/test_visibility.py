"""The visibility table and the one formatter."""

from __future__ import annotations

import pytest

from enclave.access.permissions import ROLE_PERMISSIONS
from enclave.people import visibility
from enclave.people.models import Person

EXPECTED = {
    "owner": {"none": "visible", "personal": "visible", "sensitive": "visible"},
    "admin": {"none": "visible", "personal": "visible", "sensitive": "visible"},
    "user": {"none": "visible", "personal": "visible", "sensitive": "visible"},
    "analyst": {"none": "visible", "personal": "masked", "sensitive": "masked"},
    "viewer": {"none": "hidden", "personal": "hidden", "sensitive": "hidden"},
}
# Not personal-data fields of their own: custom and sealed_custom hold custom values, each
# classed by its FieldDefinition; row_id is the encryption binding of sealed_custom.
INTERNAL = {"id", "account", "custom", "sealed_custom", "row_id", "archived_at", "person_tags"}


class TestVisibilityTable:
    @pytest.mark.parametrize("role", EXPECTED)
    def test_built_in_role_levels(self, role):
        assert visibility.ROLE_VISIBILITY[role] == EXPECTED[role]

    def test_every_person_field_has_a_personal_data_class(self):
        fields = {f.name for f in Person._meta.get_fields()} - INTERNAL
        assert fields == set(visibility.FIELD_CLASSES)

    def test_unknown_class_fails_closed(self):
        assert visibility.level(ROLE_PERMISSIONS["owner"], "secret") == "hidden"

    def test_read_without_write_masks_personal_data(self):
        assert visibility.level({"people.read", "people.unmask"}, "personal") == "masked"

    def test_write_without_unmask_masks_sensitive_data(self):
        assert visibility.level({"people.read", "people.write"}, "sensitive") == "masked"


class TestMasking:
    def test_email(self):
        assert visibility.mask_email("jane@example.com") == "j***@e***.com"

    def test_phone_keeps_country_code_and_last_three_digits(self):
        assert visibility.mask_phone("+44 20 7946 0123") == "+44 ••• ••• 123"

    def test_short_phone_is_fully_masked(self):
        assert visibility.mask_phone("123") == "•••"

    def test_name(self):
        assert visibility.mask_name("Jane") == "J***"

    def test_other_fields(self):
        person = Person(address="1 High Street", ip="192.0.2.1")
        shown = visibility.display(person, "address", ROLE_PERMISSIONS["analyst"])
        assert (shown.text, shown.level) == ("•••", "masked")

    def test_hidden_field_has_no_text(self):
        person = Person(email="jane@example.com")
        shown = visibility.display(person, "email", ROLE_PERMISSIONS["viewer"])
        assert (shown.text, shown.hidden) == ("", True)


class TestQueryable:
    def test_masked_field_cannot_be_filtered(self):
        with pytest.raises(visibility.FieldNotQueryable, match="masked"):
            visibility.require_visible(ROLE_PERMISSIONS["analyst"], "email", "filter")

    def test_visible_field_can_be_filtered(self):
        visibility.require_visible(ROLE_PERMISSIONS["analyst"], "company", "filter")

    def test_unknown_field_is_refused(self):
        with pytest.raises(visibility.FieldNotQueryable, match="Unknown"):
            visibility.require_visible(ROLE_PERMISSIONS["owner"], "password", "sort")
