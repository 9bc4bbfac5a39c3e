"""The personal-data registry classifies every field of every model, and what is derived
from it (visibility classes, erasure steps, anonymisation, log redaction) follows it."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models

from enclave.access import personal_data as pd
from enclave.people import visibility

ENCLAVE_MODELS = [m for m in apps.get_models()
                  if m.__module__.startswith("enclave.") or m._meta.label in (
                      "sessions.Session",)]
THIRD_PARTY = [m for m in apps.get_models() if m._meta.label in pd.THIRD_PARTY]


def _id(model) -> str:
    return model._meta.label


class TestEveryFieldIsClassified:
    @pytest.mark.parametrize("model", ENCLAVE_MODELS, ids=_id)
    def test_the_registry_lists_exactly_the_models_fields(self, model):
        entry = pd.model(model._meta.label)
        assert set(entry.fields) == {f.name for f in model._meta.concrete_fields}, (
            f"classify the fields of {model._meta.label} in enclave/access/personal_data.py")

    def test_every_registry_entry_is_a_model(self):
        labels = {m._meta.label.lower() for m in apps.get_models()}
        assert {m.label.lower() for m in pd.MODELS} <= labels

    def test_every_model_is_in_the_registry_or_declared_third_party(self):
        listed = {m.label.lower() for m in pd.MODELS} | {t.lower() for t in pd.THIRD_PARTY}
        assert {m._meta.label_lower for m in apps.get_models()} <= listed


class TestRegistryRules:
    def test_personal_data_cannot_be_declared_loggable(self):
        with pytest.raises(ValueError, match="never reach the logs"):
            pd.Field(pd.PERSONAL, "blank", logs=True)

    def test_personal_data_cannot_be_kept_in_anonymised_restores(self):
        with pytest.raises(ValueError, match="anonymised"):
            pd.Field(pd.SENSITIVE, "keep", logs=False)

    def test_an_unknown_class_is_refused(self):
        with pytest.raises(ValueError, match="class"):
            pd.Field("secretish")


def _foreign_keys_to(target_label: str):
    target = apps.get_model(target_label)
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, models.ForeignKey) and field.related_model is target:
                yield model, field


class TestErasureReachesEverything:
    @pytest.mark.parametrize(("model", "field"), list(_foreign_keys_to("people.Person")),
                             ids=lambda v: getattr(v, "name", None) or _id(v))
    def test_every_foreign_key_to_a_person_is_linked_for_erasure(self, model, field):
        links = pd.model(model._meta.label).links
        assert any(link.subject == pd.PERSON and link.column == field.column
                   for link in links), f"{model._meta.label}.{field.name}"

    def test_person_erasure_deletes_children_before_the_person(self):
        tables = [table for _, _, table in pd.erasure_steps(pd.PERSON)]
        assert tables[-1] == "people_person"
        assert {"people_persontag", "events_event", "people_pendingimport",
                "core_auditevent"} <= set(tables)

    @pytest.mark.parametrize("model", [m for m in pd.MODELS if any(
        f.cls in (pd.PERSONAL, pd.SENSITIVE) for f in m.fields.values())],
        ids=lambda m: m.label)
    def test_every_model_with_personal_data_is_anonymised(self, model):
        anonymised = {entry.label for entry, _, _ in pd.anonymise_assignments()}
        assert model.label in anonymised


class TestDerived:
    def test_visibility_classes_come_from_the_registry(self):
        for name, cls in visibility.FIELD_CLASSES.items():
            assert pd.field_of("people.Person", name).cls == cls

    def test_sensitive_and_personal_person_fields_are_not_visible_to_an_analyst(self):
        from enclave.access.permissions import ROLE_PERMISSIONS

        hidden = [f for f in visibility.FIELD_CLASSES
                  if visibility.field_level(ROLE_PERMISSIONS["analyst"], f) ==
                  visibility.VISIBLE and pd.field_of("people.Person", f).cls != pd.NONE]
        assert hidden == []

    def test_log_redaction_names_cover_the_persons_personal_fields(self):
        names = pd.log_redacted_names()
        assert {"email", "first_name", "last_name", "phone", "address"} <= names
        assert "company" not in names
