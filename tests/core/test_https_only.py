"""Plain HTTP: pages redirect with 301, the API refuses and records exposed credentials."""

import json

import pytest

from enclave.core.models import AuditEvent, AuditEventType, CredentialExposure


@pytest.mark.django_db
class TestPlainHttpPages:
    def test_page_request_redirects_permanently_to_same_https_url(self, http_client):
        response = http_client.get("/pricing?plan=team", HTTP_HOST="localhost:8080")
        assert response.status_code == 301
        assert response["Location"] == "https://localhost:8443/pricing?plan=team"

    def test_page_redirect_is_not_recorded_as_exposure_without_credentials(self, http_client):
        http_client.get("/", HTTP_HOST="localhost:8080")
        assert CredentialExposure.objects.count() == 0


@pytest.mark.django_db
class TestPlainHttpApi:
    def test_api_request_is_refused_with_problem_json_not_redirected(self, http_client):
        response = http_client.get("/api/v1/health", HTTP_HOST="localhost:8080")
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        body = json.loads(response.content)
        assert body["type"].endswith("/problems/https-required")
        assert "https://localhost:8443/api/v1/health" in body["detail"]
        assert "Location" not in response

    def test_api_request_with_bearer_token_records_exposure_without_the_token(self, http_client):
        http_client.get("/api/v1/health", HTTP_HOST="localhost:8080",
                        HTTP_AUTHORIZATION="Bearer planted-secret-123")
        exposure = CredentialExposure.objects.get()
        assert exposure.kind == "authorization"
        assert "planted-secret-123" not in exposure.fingerprint
        event = AuditEvent.objects.get(event_type=AuditEventType.CREDENTIAL_EXPOSED)
        assert "planted-secret-123" not in json.dumps(event.extra_data)

    def test_api_key_in_query_string_is_recorded_as_exposed(self, http_client):
        http_client.get("/api/v1/health?api_key=abc123", HTTP_HOST="localhost:8080")
        assert CredentialExposure.objects.filter(kind="query").count() == 1

    def test_same_credential_gets_same_fingerprint(self, http_client):
        for _ in range(2):
            http_client.get("/api/v1/health", HTTP_HOST="localhost:8080",
                            HTTP_AUTHORIZATION="Bearer same")
        assert CredentialExposure.objects.values("fingerprint").distinct().count() == 1

    def test_https_api_request_is_served(self, client):
        response = client.get("/api/v1/health", HTTP_HOST="localhost")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
