"""/.well-known/security.txt as RFC 9116 requires it."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from enclave.core import clock

PATH = "/.well-known/security.txt"
FIELD_LINE = re.compile(r"^(?P<name>[A-Za-z0-9-]+): (?P<value>\S.*)$")


def fields(client) -> dict[str, list[str]]:
    """Field name → values; fails the test on any line that is not ``Name: value``."""
    found: dict[str, list[str]] = {}
    for line in client.get(PATH).text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = FIELD_LINE.match(line)
        assert match, f"not an RFC 9116 field line: {line!r}"
        found.setdefault(match["name"], []).append(match["value"])
    return found


def expires(client) -> dt.datetime:
    (value,) = fields(client)["Expires"]
    assert value.endswith("Z"), "Expires must be an RFC 3339 UTC timestamp"
    return dt.datetime.fromisoformat(value)


class TestSecurityTxt:
    def test_security_txt_is_utf8_plain_text_over_https(self, client):
        response = client.get(PATH)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/plain; charset=utf-8"

    def test_plain_http_request_is_redirected_to_https(self, http_client):
        response = http_client.get(PATH, HTTP_HOST="localhost:8080")
        assert response.status_code == 301
        assert response["Location"] == f"https://localhost:8443{PATH}"

    @pytest.mark.parametrize(
        "name", ["Contact", "Expires", "Policy", "Preferred-Languages", "Canonical"],
    )
    def test_field_appears_exactly_once(self, client, name):
        assert len(fields(client).get(name, [])) == 1

    def test_contact_is_the_configured_security_contact(self, client):
        assert fields(client)["Contact"] == [settings.CONFIG.security_contact]

    def test_preferred_language_is_english(self, client):
        assert fields(client)["Preferred-Languages"] == ["en"]

    def test_canonical_is_the_https_url_of_this_file(self, client):
        assert fields(client)["Canonical"] == [f"{settings.CONFIG.public_url}{PATH}"]
        assert fields(client)["Canonical"][0].startswith("https://")

    def test_expires_is_in_the_future_and_less_than_a_year_away(self, client):
        remaining = expires(client) - clock.now()
        assert dt.timedelta(days=1) < remaining < dt.timedelta(days=365)

    def test_expires_moves_with_the_clock(self, client):
        before = expires(client)
        with clock.travel(dt.timedelta(days=400)):
            after = expires(client)
            assert after > clock.now()
        assert dt.timedelta(days=400) <= after - before < dt.timedelta(days=400, minutes=1)

    @pytest.mark.django_db
    def test_policy_links_to_the_disclosure_section_of_the_security_page(self, client):
        (policy,) = fields(client)["Policy"]
        url = urlsplit(policy)
        assert url.scheme == "https"
        assert url.fragment == "disclosure"
        page = client.get(url.path)
        assert page.status_code == 200
        assert 'id="disclosure"' in page.text
