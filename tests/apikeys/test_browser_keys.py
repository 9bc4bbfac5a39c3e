"""Browser keys (website tracking): their fixed shape, their origins, how they are made on
the keys page and with the CLI, and the tracking library they come with."""

from __future__ import annotations

import base64
import hashlib
import html

import pytest
from django.core.exceptions import ValidationError

from enclave import cli
from enclave.apikeys.actions import clean_origin, do_roll_api_key, origin_allowed
from enclave.apikeys.auth import authenticate_token
from enclave.core.models import AuditEvent, AuditEventType
from enclave.events import tracker
from tests.apikeys.factories import make_key
from tests.conftest import HttpsClient

SITE = "https://www.shop.example"


def browser_key(world, **kw):
    kw.setdefault("allowed_origins", [SITE])
    kw.setdefault("kind", "browser")
    return make_key(world.account, world.members["owner"], scopes=[], **kw)


class TestOrigins:
    @pytest.mark.parametrize(("given", "stored"), [
        ("https://WWW.Shop.example/", "https://www.shop.example"),
        ("https://www.shop.example:443", "https://www.shop.example"),
        ("https://www.shop.example:8443", "https://www.shop.example:8443"),
        ("https://*.shop.example", "https://*.shop.example"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ])
    def test_origin_is_stored_normalised(self, given, stored):
        assert clean_origin(given) == stored

    @pytest.mark.parametrize("given", [
        "http://www.shop.example", "https://www.shop.example/path", "https://shop.example?x=1",
        "https://user@shop.example", "ftp://shop.example", "www.shop.example", "https://",
        "https://*", "https://localhost-not", "https://exa mple.com", "https://shop.example:99999",
        "javascript:alert(1)", "https://*.github.io", "https://*.co.uk", "https://*.com",
        "https://*.1.2.3",
    ])
    def test_what_is_not_an_https_origin_is_refused(self, given):
        with pytest.raises(ValidationError) as raised:
            clean_origin(given)
        assert "allowed_origins" in raised.value.message_dict

    @pytest.mark.parametrize(("origin", "allowed"), [
        ("https://www.shop.example", True),
        ("HTTPS://WWW.SHOP.EXAMPLE", True),
        ("https://blog.shop.example", True),
        ("https://a.b.shop.example", True),
        ("https://shop.example", False),
        ("https://evilshop.example", False),
        ("http://blog.shop.example", False),
        ("https://blog.shop.example:8443", False),
        ("https://www.shop.example.evil.example", False),
        ("null", False),
        ("", False),
    ])
    def test_request_origin_matches_exactly_or_under_a_wildcard(self, origin, allowed):
        assert origin_allowed(origin, [SITE, "https://*.shop.example"]) is allowed


@pytest.mark.django_db
class TestCreate:
    def test_browser_key_has_the_events_write_scope_only(self, world):
        token, key = browser_key(world)
        principal = authenticate_token(token, None)
        assert (key.kind, key.scopes, principal.scopes) == ("browser", ["events:write"],
                                                            {"events:write"})
        assert principal.browser.origins == (SITE,)

    def test_browser_key_with_other_scopes_is_refused(self, world):
        with pytest.raises(ValidationError) as raised:
            make_key(world.account, world.members["owner"], scopes=["people:read"],
                     kind="browser", allowed_origins=[SITE])
        assert "scopes" in raised.value.message_dict

    def test_browser_key_without_an_origin_is_refused(self, world):
        with pytest.raises(ValidationError) as raised:
            browser_key(world, allowed_origins=[])
        assert "allowed_origins" in raised.value.message_dict

    def test_browser_key_with_an_ip_allowlist_is_refused(self, world):
        with pytest.raises(ValidationError) as raised:
            browser_key(world, allowed_ips=["10.0.0.0/8"])
        assert "allowed_ips" in raised.value.message_dict

    def test_server_key_with_browser_settings_is_refused(self, world):
        with pytest.raises(ValidationError) as raised:
            make_key(world.account, world.members["owner"], scopes=["events:write"],
                     allowed_origins=[SITE])
        assert "kind" in raised.value.message_dict

    @pytest.mark.parametrize(("field", "value"), [("kind", "mobile"),
                                             ("identify_mode", "overwrite")])
    def test_unknown_kind_or_identify_mode_is_refused(self, world, field, value):
        with pytest.raises(ValidationError) as raised:
            browser_key(world, **{field: value})
        assert field in raised.value.message_dict

    def test_too_many_origins_are_refused(self, world):
        with pytest.raises(ValidationError) as raised:
            browser_key(world, allowed_origins=[f"https://s{i}.shop.example"
                                                for i in range(21)])
        assert "At most 20" in raised.value.message_dict["allowed_origins"][0]

    def test_audit_row_records_the_browser_settings(self, world):
        _, key = browser_key(world, require_consent=True, identify_mode="fill_new")
        row = AuditEvent.objects.get(event_type=AuditEventType.API_KEY_CREATED,
                                     target_id=key.public_id)
        assert {k: row.extra_data[k] for k in ("kind", "allowed_origins", "require_consent",
                                               "identify_mode")} == {
            "kind": "browser", "allowed_origins": [SITE], "require_consent": True,
            "identify_mode": "fill_new"}

    def test_rolled_browser_key_keeps_its_origins_and_rules(self, world):
        _, key = browser_key(world, require_consent=True, identify_mode="fill_new")
        _, successor = do_roll_api_key(key, actor=world.actor("owner"))
        assert (successor.kind, successor.allowed_origins, successor.require_consent,
                successor.identify_mode) == ("browser", [SITE], True, "fill_new")


@pytest.mark.django_db
class TestKeysPage:
    FORM = {"name": "Website", "kind": "browser", "allowed_origins": SITE,
            "require_consent": "on", "identify_mode": "link", "expires_days": "30"}

    def test_created_browser_key_page_shows_the_snippet_with_its_integrity(self, world):
        response = world.client("owner").post("/app/api-keys/new/", self.FORM)
        assert response.status_code == 201
        text = html.unescape(response.text)
        assert f'integrity="{tracker.integrity()}"' in text
        assert "requireConsent: true" in text
        assert "/t/v1/analytics.js" in text

    def test_keys_page_lists_a_browser_keys_origins(self, world):
        browser_key(world, require_consent=True)
        text = world.client("owner").get("/app/api-keys/").text
        assert f"browser key for {SITE}; consent required" in text

    def test_browser_key_with_a_bad_origin_is_shown_the_form_again(self, world):
        response = world.client("owner").post("/app/api-keys/new/", {
            **self.FORM, "allowed_origins": "http://www.shop.example"})
        assert response.status_code == 422
        assert "served over https" in response.text

    def test_scopes_ticked_for_a_browser_key_are_ignored(self, world):
        response = world.client("owner").post("/app/api-keys/new/", {
            **self.FORM, "scopes": ["people:read"]})
        assert response.status_code == 201
        assert "Scopes: events:write" in response.text


@pytest.mark.django_db
class TestCli:
    def test_creates_a_browser_key_with_its_origins(self, world, capsys):
        code = cli.main(["apikeys", "create", "--account", str(world.account.pk),
                         "--member", "owner@acme.example", "--name", "site", "--kind",
                         "browser", "--allowed-origins", f"{SITE},https://*.shop.example",
                         "--require-consent"])
        out, err = capsys.readouterr()
        assert code == 0, err
        principal = authenticate_token(out.strip(), None)
        assert principal.browser.origins == ("https://*.shop.example", SITE)
        assert principal.browser.require_consent is True

    def test_browser_key_without_origins_is_one_line_and_exit_2(self, world, capsys):
        code = cli.main(["apikeys", "create", "--account", str(world.account.pk),
                         "--member", "owner@acme.example", "--name", "site", "--kind",
                         "browser"])
        _, err = capsys.readouterr()
        assert code == 2
        assert err.count("\n") == 1
        assert "allowed_origins" in err


@pytest.mark.django_db
class TestLibrary:
    def test_library_is_served_to_other_sites_with_the_snippets_integrity(self):
        response = HttpsClient().get(tracker.PATH)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/javascript")
        digest = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
        assert tracker.integrity() == f"sha384-{digest}"
        assert response["Access-Control-Allow-Origin"] == "*"
        assert response["Cross-Origin-Resource-Policy"] == "cross-origin"

    def test_other_responses_stay_same_origin_only(self):
        assert HttpsClient().get("/pricing")["Cross-Origin-Resource-Policy"] == "same-origin"

    def test_snippet_loads_nothing_from_a_third_party(self):
        text = tracker.snippet("https://enclave.example", "KEY", require_consent=False)
        assert text.count("https://") == 1
        assert "enclave.consent" not in text
