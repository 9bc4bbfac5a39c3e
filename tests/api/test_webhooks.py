"""Webhook endpoints through /api/v1/webhooks: the secret is shown once, the URL never
again (only its host), the delivery log never holds a payload, and bad input is a clear
problem document."""

from __future__ import annotations

import pytest

from enclave.people.actions import do_create_person
from enclave.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.api.test_errors import problem

HOOK = {"url": "https://hooks.acme.example/in?token=rcv-s3cr3t",
        "event_types": ["person.created"], "description": "CRM"}


def make(api, **changes):
    return api.post("/api/v1/webhooks", {**HOOK, **changes})


@pytest.mark.django_db
class TestWebhooksApi:
    def test_the_secret_is_in_the_creating_answer_only(self, api):
        created = make(api)
        assert created.status_code == 201
        body = created.json()
        assert body["secret"].startswith("whsec_")
        assert (body["host"], body["state"], body["role_ceiling"]) == (
            "hooks.acme.example", "active", "viewer")
        again = api.get(f"/api/v1/webhooks/{body['id']}").content.decode()
        listed = api.get("/api/v1/webhooks").content.decode()
        for text in (again, listed):
            assert body["secret"] not in text
            assert "rcv-s3cr3t" not in text

    def test_a_rotation_answers_with_the_new_secret_and_the_overlap(self, api):
        first = make(api).json()
        rotated = api.post(f"/api/v1/webhooks/{first['id']}/rotate-secret", {})
        assert rotated.status_code == 200
        assert rotated.json()["secret"] not in (first["secret"], "")
        assert rotated.json()["secret_rotation_overlap_until"] is not None

    def test_an_internal_url_is_a_validation_problem(self, api):
        body = problem(make(api, url="https://169.254.169.254/latest"), 422,
                       "validation")
        assert "url" in str(body)

    def test_an_unknown_event_type_is_a_validation_problem(self, api):
        problem(make(api, event_types=["person.created", "all"]), 422, "validation")

    def test_disabling_and_enabling_through_patch(self, api):
        hook = make(api).json()
        off = api.patch(f"/api/v1/webhooks/{hook['id']}", {"enabled": False}).json()
        assert (off["state"], off["disabled_reason"]) == ("disabled", "disabled by a member")
        on = api.patch(f"/api/v1/webhooks/{hook['id']}", {"enabled": True}).json()
        assert (on["state"], on["disabled_reason"]) == ("active", "")

    def test_the_delivery_log_pages_newest_first_without_payloads(self, world, api):
        hook = make(api).json()
        for n in range(3):
            do_create_person(world.account, {"email": f"p{n}@example.net"},
                             actor=world.actor("owner"))
        page = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries?limit=2").json()
        ids = list(WebhookDelivery.objects.order_by("-pk").values_list("pk", flat=True))
        assert [d["id"] for d in page["results"]] == ids[:2]
        rest = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries?limit=2"
                       f"&cursor={page['next_cursor']}").json()
        assert ([d["id"] for d in rest["results"]], rest["next_cursor"]) == (ids[2:], None)
        assert "p0@example.net" not in str(page) + str(rest)

    def test_an_unknown_query_parameter_is_refused(self, api):
        hook = make(api).json()
        problem(api.get(f"/api/v1/webhooks/{hook['id']}/deliveries?state=failed"), 400,
                "invalid-query")

    def test_a_key_cannot_make_an_endpoint_that_shows_more_than_it_may_read(self, world):
        from tests.api.conftest import key_client

        narrow = key_client(world, ceiling="owner",
                            scopes=["webhooks:read", "webhooks:write", "people:read"])
        body = problem(make(narrow, role_ceiling="analyst"), 422, "validation")
        assert "role_ceiling" in body["errors"]
        assert not WebhookEndpoint.objects.exists()

    def test_a_narrow_key_cannot_point_an_endpoint_at_its_own_receiver(self, world):
        from enclave.webhooks.actions import do_create_webhook_endpoint
        from tests.api.conftest import key_client

        endpoint, _ = do_create_webhook_endpoint(
            world.account, url=HOOK["url"], event_types=["person.created"],
            role_ceiling="owner", actor=world.actor("owner"))
        hook = {"id": endpoint.pk}
        narrow = key_client(world, ceiling="owner",
                            scopes=["webhooks:read", "webhooks:write"])
        moved = narrow.patch(f"/api/v1/webhooks/{hook['id']}",
                             {"url": "https://attacker.example/collect"})
        problem(moved, 403, "forbidden")
        assert WebhookEndpoint.objects.get().url == HOOK["url"]
        assert narrow.patch(f"/api/v1/webhooks/{hook['id']}",
                            {"description": "still allowed"}).status_code == 200
