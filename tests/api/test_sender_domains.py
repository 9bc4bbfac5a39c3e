"""Sender domains through /api/v1/sender-domains, against a real local DNS server."""

from __future__ import annotations

import pytest

from enclave.messaging import dkim
from enclave.messaging.models import DkimKey
from tests.api.test_errors import problem


def add(api, domain="news.acme.example"):
    return api.post("/api/v1/sender-domains", {"domain": domain})


@pytest.mark.django_db
class TestSenderDomains:
    def test_adding_answers_the_records_to_publish(self, api):
        response = add(api)
        body = response.json()
        key = DkimKey.objects.get()
        assert (response.status_code, body["state"]) == (201, "unverified")
        assert response["Location"] == f"/api/v1/sender-domains/{body['id']}"
        dkim_record = body["records"][0]
        assert dkim_record == {
            "type": "TXT", "name": f"{key.selector}._domainkey.news.acme.example",
            "value": f"v=DKIM1; k=rsa; p={key.public_key}",
            "purpose": f"DKIM key {key.selector} (pending)", "required": True}

    def test_no_response_ever_carries_the_private_key(self, api):
        url = add(api)["Location"]
        text = api.get(url).content.decode() + api.get("/api/v1/sender-domains").content.decode()
        assert "PRIVATE KEY" not in text
        assert "ek1:" not in text

    def test_a_bad_domain_is_a_422_and_a_duplicate_a_409(self, api):
        problem(add(api, "localhost"), 422, "validation")
        add(api)
        problem(add(api), 409, "conflict")

    def test_check_verifies_once_the_record_is_published(self, api, local_dns):
        url = add(api)["Location"]
        key = DkimKey.objects.get()
        assert api.post(url + "/check").json()["state"] == "unverified"
        local_dns.publish(dkim.record_name(key.selector, "news.acme.example"),
                          dkim.txt_value(key.public_key))
        body = api.post(url + "/check").json()
        assert (body["state"], body["keys"][0]["state"]) == ("verified", "active")

    def test_checks_past_the_limit_are_a_429(self, api, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES,
                                      "sender_domain.check": "1/h"}
        url = add(api)["Location"]
        api.post(url + "/check")
        response = problem(api.post(url + "/check"), 429, "rate-limited")
        assert response["status"] == 429

    def test_rotating_before_verification_is_a_409(self, api):
        problem(api.post(add(api)["Location"] + "/rotate"), 409, "conflict")

    def test_remove_answers_204_and_the_domain_is_gone(self, api):
        url = add(api)["Location"]
        assert api.delete(url).status_code == 204
        assert api.get(url).status_code == 404
        assert not DkimKey.objects.exists()
