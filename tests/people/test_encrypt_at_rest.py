"""Custom fields an account marks "encrypt at rest": values sealed by the keyring."""

from __future__ import annotations

import pytest

from enclave.keys.errors import KeyringError
from enclave.people import actions, visibility
from enclave.people.models import Person, sealed_values

SECRET_NOTE = "diagnosed 2026-03 — do not email"


@pytest.fixture
def sealed_field(world):
    return actions.do_define_field(world.account, "health_note", "Health note", "text",
                                   pd_class="sensitive", encrypt_at_rest=True,
                                   actor=world.actor("owner"))


def stored(person_id: int) -> tuple[dict, str]:
    row = Person.objects.filter(pk=person_id).values("custom", "sealed_custom").get()
    return row["custom"], str(row["sealed_custom"])


@pytest.mark.django_db
class TestEncryptAtRest:
    def test_value_is_stored_only_as_keyring_ciphertext(self, world, sealed_field):
        actions.do_update_person(world.person, {"custom.health_note": SECRET_NOTE},
                                 actor=world.actor("owner"))
        custom, sealed = stored(world.person.pk)
        assert "health_note" not in custom
        assert sealed.startswith("ek1:fields:")
        assert SECRET_NOTE not in sealed

    def test_owner_reads_the_value_back(self, world, sealed_field):
        actions.do_update_person(world.person, {"custom.health_note": SECRET_NOTE},
                                 actor=world.actor("owner"))
        person = Person.objects.get(pk=world.person.pk)
        assert visibility.raw_value(person, "custom.health_note") == SECRET_NOTE

    def test_detail_page_shows_it_to_owner_and_masks_it_for_analyst(self, world, sealed_field):
        actions.do_update_person(world.person, {"custom.health_note": SECRET_NOTE},
                                 actor=world.actor("owner"))
        url = f"/app/people/{world.person.pk}/"
        assert SECRET_NOTE in world.client("owner").get(url).content.decode()
        analyst = world.client("analyst").get(url)
        assert analyst.status_code == 200
        assert "Health note" in analyst.text  # the field is on the page, its value masked
        assert SECRET_NOTE not in analyst.text

    def test_unencrypted_fields_stay_in_the_searchable_column(self, world, sealed_field):
        actions.do_define_field(world.account, "plan", "Plan", "text", pd_class="none",
                                actor=world.actor("owner"))
        actions.do_update_person(world.person, {"custom.plan": "gold",
                                                "custom.health_note": SECRET_NOTE},
                                 actor=world.actor("owner"))
        custom, _ = stored(world.person.pk)
        assert custom["plan"] == "gold"
        assert sealed_values(Person.objects.get(pk=world.person.pk)) == {
            "health_note": SECRET_NOTE}

    def test_ciphertext_copied_to_another_person_does_not_decrypt(self, world, sealed_field):
        actions.do_update_person(world.person, {"custom.health_note": SECRET_NOTE},
                                 actor=world.actor("owner"))
        other = actions.do_create_person(world.account, {"email": "other@example.com"},
                                         actor=world.actor("owner"))
        ciphertext = Person.objects.values_list("sealed_custom", flat=True).get(
            pk=world.person.pk)  # the stored value itself (a Sealed), not plaintext
        Person.objects.filter(pk=other.pk).update(sealed_custom=ciphertext)
        with pytest.raises(KeyringError):
            _ = Person.objects.get(pk=other.pk).sealed_custom

    def test_clearing_the_value_removes_the_ciphertext(self, world, sealed_field):
        actions.do_update_person(world.person, {"custom.health_note": SECRET_NOTE},
                                 actor=world.actor("owner"))
        actions.do_update_person(world.person, {"custom.health_note": None},
                                 actor=world.actor("owner"))
        assert Person.objects.get(pk=world.person.pk).sealed_custom is None
