"""Template actions: who may, what is audited (never the text), bad input that writes
nothing; and previews, which show a person exactly as the viewer may see them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.http import Http404

from enclave.access.principal import NotAuthorized
from enclave.core.models import AuditEvent, AuditEventType
from enclave.messaging import access, actions
from enclave.messaging.models import EmailTemplate
from tests.people.world import MASKED, PERSON

SOURCE = "<p>Hello {{ person.first_name }} ({{ person.email }})</p>"


def create(world, role="user", name="Welcome", source=SOURCE, subject="Hi"):
    return actions.do_create_template(world.account, name, "html", subject, source,
                                      actor=world.actor(role))


@pytest.mark.django_db
class TestCreate:
    def test_stores_source_and_its_compiled_html(self, world):
        template = create(world)
        assert (template.source, "Hello {{ person.first_name }}" in template.compiled) == (
            SOURCE, True)

    def test_audit_row_names_the_template_never_its_text(self, world):
        template = create(world, source="<p>Secret launch plan {{ person.email }}</p>")
        event = AuditEvent.objects.get(event_type=AuditEventType.TEMPLATE_CREATED)
        assert (event.target_type, event.target_id, event.extra_data) == (
            "template", str(template.pk), {"kind": "html"})

    @pytest.mark.parametrize("role", ["analyst", "viewer"])
    def test_a_role_without_email_manage_cannot_create(self, world, role):
        with pytest.raises(NotAuthorized):
            create(world, role=role)
        assert not EmailTemplate.objects.exists()

    def test_a_broken_template_is_refused_naming_the_field_and_nothing_is_stored(self, world):
        with pytest.raises(ValidationError) as caught:
            create(world, source="{% for x in (1..100000) %}x{% endfor %}")
        assert list(caught.value.message_dict) == ["source"]
        assert not EmailTemplate.objects.exists()
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.TEMPLATE_CREATED).exists()

    def test_a_duplicate_name_in_the_account_is_refused(self, world):
        create(world)
        with pytest.raises(ValidationError) as caught:
            create(world, name=" Welcome ")
        assert caught.value.message_dict == {"name": [actions.DUPLICATE_NAME]}

    def test_the_same_name_in_another_account_is_fine(self, world):
        create(world)
        other = actions.do_create_template(world.other, "Welcome", "html", "Hi", SOURCE,
                                           actor=world.other_actor())
        assert other.account_id == world.other.pk


@pytest.mark.django_db
class TestChange:
    def test_a_new_source_is_compiled_again_and_audited_by_field(self, world):
        template = create(world)
        changed = actions.do_change_template(template, source="<p>Bye</p>",
                                             actor=world.actor("user"))
        assert "Bye" in changed.compiled
        assert "Hello" not in changed.compiled
        event = AuditEvent.objects.get(event_type=AuditEventType.TEMPLATE_CHANGED)
        assert event.extra_data == {"fields": ["source"]}

    def test_no_change_writes_no_audit_row(self, world):
        template = create(world)
        actions.do_change_template(template, name="Welcome", source=SOURCE,
                                   actor=world.actor("user"))
        assert not AuditEvent.objects.filter(
            event_type=AuditEventType.TEMPLATE_CHANGED).exists()

    def test_an_invalid_change_leaves_the_stored_template_as_it_was(self, world):
        template = create(world)
        with pytest.raises(ValidationError):
            actions.do_change_template(template, subject="Hi {{ person.password }}",
                                       actor=world.actor("user"))
        template.refresh_from_db()
        assert (template.subject, template.source) == ("Hi", SOURCE)

    def test_switching_kind_checks_the_source_as_the_new_kind(self, world):
        template = create(world)
        with pytest.raises(ValidationError) as caught:
            actions.do_change_template(template, kind="mjml", actor=world.actor("user"))
        assert list(caught.value.message_dict) == ["source"]


@pytest.mark.django_db
class TestDelete:
    def test_deletes_and_audits_once(self, world):
        template = create(world)
        actions.do_delete_template(template, actor=world.actor("user"))
        actions.do_delete_template(template, actor=world.actor("user"))
        assert not EmailTemplate.objects.exists()
        assert AuditEvent.objects.filter(
            event_type=AuditEventType.TEMPLATE_DELETED).count() == 1

    def test_an_analyst_cannot_delete(self, world):
        template = create(world)
        with pytest.raises(NotAuthorized):
            actions.do_delete_template(template, actor=world.actor("analyst"))
        assert EmailTemplate.objects.filter(pk=template.pk).exists()


@pytest.mark.django_db
class TestPreview:
    def test_a_member_who_sees_everything_sees_the_real_values(self, world):
        out = access.preview(world.actor("user"), create(world), world.person.pk)
        assert f"Hello {PERSON['first_name']} ({PERSON['email']})" in out.html

    def test_an_analyst_sees_masked_values_and_never_the_real_ones(self, world):
        out = access.preview(world.actor("analyst"), create(world), world.person.pk)
        assert f"Hello {MASKED['first_name']} ({MASKED['email']})" in out.html
        assert PERSON["email"] not in out.html + out.text + out.subject

    def test_a_viewer_sees_every_personal_field_empty(self, world):
        out = access.preview(world.actor("viewer"), create(world), world.person.pk)
        assert "Hello  ()" in out.html

    def test_a_masked_value_cannot_be_tested_by_a_condition_in_the_template(self, world):
        template = create(world, source="{% if person.email contains 'xq.person' %}YES"
                                        "{% else %}NO{% endif %}")
        assert "NO" in access.preview(world.actor("analyst"), template, world.person.pk).html
        assert "YES" in access.preview(world.actor("user"), template, world.person.pk).html

    def test_links_are_placeholders_never_a_working_token(self, world):
        template = create(world, source="<a href='{{ preferences_url }}'>p</a>"
                                        "<a href='{{ unsubscribe_url }}'>u</a>")
        out = access.preview(world.actor("user"), template, world.person.pk)
        assert "/preferences/" not in out.html
        assert "(preview)" in out.html

    def test_another_accounts_person_is_not_found(self, world):
        with pytest.raises(Http404):
            access.preview(world.actor("user"), create(world), world.other_person.pk)

    def test_without_a_person_a_sample_is_used(self, world):
        out = access.preview(world.actor("viewer"), create(world))
        assert "Hello Ada (ada@example.com)" in out.html
