"""Email templates through /api/v1/templates: the whole round trip, bad input as
problem+json, and previews that show people exactly as the key may see them."""

from __future__ import annotations

import pytest

from enclave.messaging.models import EmailTemplate
from enclave.messaging.rendering import MAX_SOURCE
from tests.api.conftest import key_client
from tests.api.test_errors import problem
from tests.people.world import MASKED, PERSON

WELCOME = {"name": "Welcome", "kind": "mjml", "subject": "Hi {{ person.first_name }}",
           "source": "<mjml><mj-body><mj-section><mj-column><mj-text>Hello "
                     "{{ person.email }}</mj-text></mj-column></mj-section></mj-body></mjml>"}


def make(api, **changes):
    return api.post("/api/v1/templates", {**WELCOME, **changes})


@pytest.mark.django_db
class TestTemplates:
    def test_create_list_change_and_delete(self, api):
        created = make(api)
        assert created.status_code == 201
        url = created["Location"]
        assert url == f"/api/v1/templates/{created.json()['id']}"
        assert [t["name"] for t in api.get("/api/v1/templates").json()["results"]] == [
            "Welcome"]
        changed = api.patch(url, {"subject": "Hello"})
        assert (changed.status_code, changed.json()["subject"]) == (200, "Hello")
        assert api.delete(url).status_code == 204
        assert api.get(url).status_code == 404

    def test_a_template_that_does_not_compile_is_a_422_naming_the_field(self, api):
        body = problem(make(api, source="<mjml><mj-body><mj-sect"), 422, "validation")
        assert list(body["errors"]) == ["source"]
        assert body["errors"]["source"][0].startswith("MJML: ")
        assert not EmailTemplate.objects.exists()

    def test_an_unknown_merge_field_is_a_422(self, api):
        body = problem(make(api, subject="Hi {{ person.password }}"), 422, "validation")
        assert body["errors"]["subject"][0].startswith("Unknown merge field person.password")

    def test_an_oversize_source_is_a_422_before_compiling(self, api):
        body = problem(make(api, kind="html", source="x" * (MAX_SOURCE + 1)), 422,
                       "validation")
        assert list(body["errors"]) == ["source"]

    def test_an_unknown_field_is_refused(self, api):
        problem(make(api, compiled="<p>sneaky</p>"), 422, "validation")

    def test_a_duplicate_name_is_a_409(self, api):
        make(api)
        problem(make(api), 409, "conflict")

    def test_a_read_only_key_cannot_create(self, world):
        reader = key_client(world, scopes=["email:read"])
        problem(make(reader), 403, "insufficient-scope")


@pytest.mark.django_db
class TestPreview:
    def test_preview_of_a_person_renders_subject_html_and_text(self, api, world):
        url = make(api)["Location"] + "/preview"
        body = api.post(url, {"person": world.person.pk}).json()
        assert body["subject"] == f"Hi {PERSON['first_name']}"
        assert f"Hello {PERSON['email']}" in body["html"]
        assert f"Hello {PERSON['email']}" in body["text"]

    def test_an_analyst_key_sees_masked_values_in_the_preview(self, api, world):
        url = make(api)["Location"] + "/preview"
        analyst = key_client(world, ceiling="analyst")
        body = analyst.post(url, {"person": world.person.pk}).json()
        assert body["subject"] == f"Hi {MASKED['first_name']}"
        assert PERSON["email"] not in str(body)

    def test_another_accounts_person_is_404(self, api, world):
        url = make(api)["Location"] + "/preview"
        problem(api.post(url, {"person": world.other_person.pk}), 404, "not-found")

    def test_without_a_person_a_sample_is_rendered(self, api):
        url = make(api)["Location"] + "/preview"
        assert api.post(url, {}).json()["subject"] == "Hi Ada"
