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
        response = http_client.get("/", HTTP_HOST="localhost:8080")
        assert (response.status_code, response["Location"]) == (301, "https://localhost:8443/")
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


def behind_proxy(settings, *proxies: str, on: bool = True) -> None:
    """Run as an app server behind a TLS edge whose address is in ``proxies``."""
    import dataclasses

    settings.CONFIG = dataclasses.replace(settings.CONFIG, behind_proxy=on,
                                          trusted_proxies=proxies)


EDGE, STRANGER = "10.0.0.5", "198.51.100.7"


@pytest.mark.django_db
class TestForwardedProto:
    """X-Forwarded-Proto counts only from a trusted proxy (the edge), never from a client."""

    def test_https_from_a_trusted_proxy_is_served(self, settings, http_client):
        behind_proxy(settings, "10.0.0.0/24")
        response = http_client.get("/api/v1/health", HTTP_HOST="localhost", REMOTE_ADDR=EDGE,
                                   HTTP_X_FORWARDED_PROTO="https")
        assert response.status_code == 200

    def test_https_claimed_by_an_untrusted_peer_is_refused_on_the_api(
            self, settings, http_client):
        behind_proxy(settings, "10.0.0.0/24")
        response = http_client.get("/api/v1/health", HTTP_HOST="localhost",
                                   REMOTE_ADDR=STRANGER, HTTP_X_FORWARDED_PROTO="https")
        assert response.status_code == 403
        assert json.loads(response.content)["type"].endswith("/problems/https-required")

    def test_https_claimed_by_an_untrusted_peer_redirects_a_page(self, settings, http_client):
        behind_proxy(settings, "10.0.0.0/24")
        response = http_client.get("/pricing", HTTP_HOST="localhost", REMOTE_ADDR=STRANGER,
                                   HTTP_X_FORWARDED_PROTO="https")
        assert response.status_code == 301
        assert response["Location"] == "https://localhost/pricing"

    def test_credential_sent_by_an_untrusted_peer_claiming_https_is_recorded(
            self, settings, http_client):
        behind_proxy(settings, "10.0.0.0/24")
        http_client.get("/api/v1/health", HTTP_HOST="localhost", REMOTE_ADDR=STRANGER,
                        HTTP_X_FORWARDED_PROTO="https", HTTP_AUTHORIZATION="Bearer sent-in-clear")
        assert CredentialExposure.objects.filter(kind="authorization").count() == 1

    def test_http_from_a_trusted_proxy_is_plain_http(self, settings, http_client):
        behind_proxy(settings, "10.0.0.0/24")
        response = http_client.get("/api/v1/health", HTTP_HOST="localhost", REMOTE_ADDR=EDGE,
                                   HTTP_X_FORWARDED_PROTO="http")
        assert response.status_code == 403

    def test_header_is_ignored_when_not_behind_a_proxy(self, settings, http_client):
        behind_proxy(settings, "10.0.0.0/24", on=False)
        response = http_client.get("/api/v1/health", HTTP_HOST="localhost:8080",
                                   REMOTE_ADDR=EDGE, HTTP_X_FORWARDED_PROTO="https")
        assert response.status_code == 403


@pytest.fixture(scope="module")
def proxied_app(tmp_path_factory):
    """``enclave serve`` with the production proxy settings (ENCLAVE_BEHIND_PROXY=1) whose
    trusted edge is some other host: 127.0.0.1 (this test) is a stranger to it."""
    from enclave.testing.live import run_enclave

    with run_enclave(tmp_path_factory.mktemp("proxy") / "var", ENCLAVE_BEHIND_PROXY="1",
                     ENCLAVE_TRUSTED_PROXIES="192.0.2.1/32") as live:
        yield live


class TestForwardedProtoLive:
    """The real settings on a real server: a client that reaches the app's listener
    directly cannot claim https."""

    def test_direct_client_claiming_https_is_refused(self, proxied_app):
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", proxied_app.http_port, timeout=10)
        try:
            conn.request("GET", "/api/v1/health", headers={"Host": "localhost",
                                                           "X-Forwarded-Proto": "https"})
            response = conn.getresponse()
            status, body = response.status, json.loads(response.read())
        finally:
            conn.close()
        assert status == 403
        assert body["type"].endswith("/problems/https-required")


def plain_api_get(http_client, path="/api/v1/health", **extra):
    return http_client.get(path, HTTP_HOST="localhost:8080", **extra)


@pytest.mark.django_db
class TestExposureRows:
    """One row per credential per request, wherever in the request it was."""

    def test_same_credential_in_header_cookie_and_query_is_one_row(self, http_client):
        http_client.cookies["auth_token"] = "same-secret-1"
        plain_api_get(http_client, "/api/v1/health?token=same-secret-1",
                      HTTP_AUTHORIZATION="Bearer same-secret-1")
        assert CredentialExposure.objects.count() == 1
        assert CredentialExposure.objects.get().kind == "authorization"

    def test_different_credentials_are_one_row_each(self, http_client):
        plain_api_get(http_client, "/api/v1/health?token=second-secret",
                      HTTP_AUTHORIZATION="Bearer first-secret")
        assert sorted(CredentialExposure.objects.values_list("kind", flat=True)) == [
            "authorization", "query"]

    def test_rows_per_request_are_capped(self, http_client):
        from enclave.core.actions import MAX_EXPOSURES_PER_REQUEST

        for i in range(MAX_EXPOSURES_PER_REQUEST + 5):
            http_client.cookies[f"token{i}"] = f"cookie-secret-{i}"
        response = plain_api_get(http_client)
        assert response.status_code == 403
        assert CredentialExposure.objects.count() == MAX_EXPOSURES_PER_REQUEST
        event = AuditEvent.objects.get(event_type=AuditEventType.CREDENTIAL_EXPOSED)
        assert event.extra_data["credentials"] == MAX_EXPOSURES_PER_REQUEST + 5


@pytest.fixture
def small_exposure_limits(settings):
    """Small limits, and a clock stopped at the start of a minute so that every request of
    a test falls in one fixed window."""
    import datetime as dt

    from enclave.core import clock

    settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES, "exposure.ip": "3/min",
                                  "exposure.global": "5/min"}
    with clock.frozen(dt.datetime(2026, 3, 2, 9, 30, 1, tzinfo=dt.UTC)):
        yield


@pytest.mark.django_db
@pytest.mark.usefixtures("small_exposure_limits")
class TestExposureRateLimit:
    """A flood of plain-HTTP requests cannot write unbounded rows; it is still refused."""

    @staticmethod
    def send(http_client, n: int, ip: str = "198.51.100.7", start: int = 0) -> list[int]:
        return [plain_api_get(http_client, REMOTE_ADDR=ip,
                              HTTP_AUTHORIZATION=f"Bearer flood-secret-{ip}-{i}").status_code
                for i in range(start, start + n)]

    def test_one_address_records_at_most_its_limit(self, http_client):
        self.send(http_client, 6)
        assert CredentialExposure.objects.count() == 3
        assert AuditEvent.objects.filter(
            event_type=AuditEventType.CREDENTIAL_EXPOSED).count() == 3

    def test_requests_over_the_limit_are_still_refused(self, http_client):
        assert self.send(http_client, 6) == [403] * 6

    def test_pages_over_the_limit_still_redirect(self, http_client):
        self.send(http_client, 3)
        response = http_client.get("/pricing", HTTP_HOST="localhost:8080",
                                   REMOTE_ADDR="198.51.100.7", HTTP_AUTHORIZATION="Bearer x-1")
        assert response.status_code == 301

    def test_another_address_is_recorded_while_one_is_over_its_limit(self, http_client):
        self.send(http_client, 6, ip="198.51.100.7")
        self.send(http_client, 1, ip="198.51.100.8")
        assert CredentialExposure.objects.filter(ip="198.51.100.8").count() == 1

    def test_many_addresses_record_at_most_the_global_limit(self, http_client):
        for i in range(8):
            self.send(http_client, 1, ip=f"198.51.100.{10 + i}")
        assert CredentialExposure.objects.count() == 5

    def test_address_over_its_limit_does_not_spend_the_global_limit(self, http_client):
        self.send(http_client, 10, ip="198.51.100.7")  # 3 recorded, 7 over its own limit
        self.send(http_client, 1, ip="198.51.100.8")
        self.send(http_client, 1, ip="198.51.100.9")
        assert CredentialExposure.objects.count() == 5

    def test_recording_resumes_in_the_next_window(self, http_client):
        import datetime as dt

        from enclave.core import clock

        self.send(http_client, 4)
        clock.advance(dt.timedelta(minutes=1))
        self.send(http_client, 1, start=10)
        assert CredentialExposure.objects.count() == 4
