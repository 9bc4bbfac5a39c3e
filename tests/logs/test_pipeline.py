"""The pipeline end to end: planted secrets never reach the store or the terminal."""

from __future__ import annotations

import json
import logging
import socket
import sys
from urllib.parse import quote

import pytest
import structlog
from django.test import override_settings

from enclave.logs import pipeline, policy
from enclave.logs.reporter import RedactingExceptionReporterFilter
from tests.conftest import HttpsClient
from tests.identity.helpers import last_link, mailing, make_member
from tests.logs import planted
from tests.logs.conftest import stored_text


@pytest.fixture
def secrets_planted():
    pem = planted.pem_private_key()
    return {
        "password": "pw-" + planted.enclave_key()[9:],
        "api_key": planted.enclave_key(),
        "x_api_key": "xk-" + planted.enclave_key()[9:],
        "card": planted.card_number(),
        "jwt": planted.jwt(),
        "pem": pem,
        "iban": planted.iban(),
        "url_password": "up-" + planted.enclave_key()[9:],
    }


def _planted_values(secrets: dict) -> list[str]:
    values = [v for k, v in secrets.items() if k != "pem"]
    return values + planted.pem_body_lines(secrets["pem"])


@pytest.mark.django_db
class TestPlantedSecrets:
    def test_real_flows_leave_no_planted_secret_in_store_or_output(
            self, store, capfd, secrets_planted, settings):
        s = secrets_planted
        settings.ROOT_URLCONF = "tests.logs.urls"
        make_member(email="jane@example.com", password=s["password"])
        pipeline.install_std_streams()
        try:
            client = HttpsClient(raise_request_exception=False)
            login = client.post("/app/login/", {"email": "jane@example.com",
                                                "password": s["password"]})
            api = client.get("/api/v1/health", HTTP_AUTHORIZATION=f"Bearer {s['api_key']}",
                             HTTP_X_API_KEY=s["x_api_key"])
            boom = client.post(
                f"/test/careless/?api_key={s['api_key']}&page=2", content_type="application/json",
                data=json.dumps({"password": s["password"], "card": s["card"],
                                 "note": f"card {s['card']} iban {s['iban']}"}),
                HTTP_AUTHORIZATION=f"Bearer {s['jwt']}", HTTP_X_API_KEY=s["x_api_key"])
            log = structlog.get_logger("enclave.tests")
            log.info(f"paid with {s['card']} from {s['iban']}")
            log.info("token seen", detail=f"jwt {s['jwt']}")
            log.info("key loaded", material=s["pem"])
            logging.getLogger("enclave.tests").info(
                "fetching https://ops:%s@backup.example.com/x", s["url_password"])
            print(f"leaked? Authorization: Bearer {s['api_key']} pem:\n{s['pem']}")  # noqa: T201
            sys.stdout.flush()
        finally:
            pipeline.uninstall_std_streams()
        text = stored_text(store)
        out, err = capfd.readouterr()
        for value in _planted_values(s):
            assert value not in text
            assert value not in out + err
        assert (login.status_code, api.status_code, boom.status_code) == (302, 200, 500)
        for response in (login, api, boom):
            assert response["X-Trace-Id"] in text
        assert "/test/careless/?api_key=[REDACTED:token]&page=2" in text
        assert "'status': 500" in text
        assert "[REDACTED:card]" in text
        assert "[REDACTED:pem]" in text

    def test_error_report_of_a_failing_request_is_logged_redacted(
            self, store, secrets_planted, settings):
        settings.ROOT_URLCONF = "tests.logs.urls"
        client = HttpsClient(raise_request_exception=False)
        client.post("/test/careless/", content_type="application/json",
                    data=json.dumps({"password": secrets_planted["password"]}))
        text = stored_text(store)
        assert "RuntimeError: could not process" in text
        assert secrets_planted["password"] not in text


TOKEN_ROUTES = ["/app/password/reset/{}", "/app/invite/{}", "/app/signup/{}", "/app/setup/{}"]


@pytest.mark.django_db
class TestOneTimeTokens:
    def test_token_links_leave_no_token_in_store_or_output(self, store, capfd, settings):
        settings.ROOT_URLCONF = "tests.logs.urls"
        make_member(email="jane@example.com")
        planted_tokens = [planted.enclave_key()[9:] for _ in TOKEN_ROUTES]
        pipeline.install_std_streams()
        try:
            client = HttpsClient(raise_request_exception=False)
            with mailing():
                client.post("/app/password/reset/", {"email": "jane@example.com"})
            real = last_link("/app/password/reset/")
            statuses = [client.get(f"/app/password/reset/{real}").status_code]
            for route, value in zip(TOKEN_ROUTES, planted_tokens, strict=True):
                statuses.append(client.get(route.format(value)).status_code)  # Not Found
                statuses.append(HttpsClient(enforce_csrf_checks=True).post(
                    route.format(value), {"x": "1"}).status_code)  # CSRF refusal
            statuses.append(client.get(
                f"/app/login/?next=/app/invite/{planted_tokens[1]}").status_code)
            statuses.append(client.get(
                f"/app/login/?next={quote(f'/app/setup/{planted_tokens[3]}', safe='')}"
            ).status_code)
            statuses.append(client.post(  # the token inside exception text and print()
                "/test/careless/", content_type="application/json",
                data=json.dumps({"next": f"/app/signup/{planted_tokens[2]}"})).status_code)
            sys.stdout.flush()
        finally:
            pipeline.uninstall_std_streams()
        text = stored_text(store)
        out, err = capfd.readouterr()
        assert statuses == [200, 404, 403, 404, 403, 404, 403, 404, 403, 200, 200, 500]
        for value in [real, *planted_tokens]:
            assert value not in text
            assert value not in out + err
        assert "Not Found: /app/invite/[REDACTED:one_time_token]" in text
        assert "/app/setup/[REDACTED:one_time_token]" in text
        assert "Forbidden (Referer checking failed - no Referer.): /app/signup/[REDACTED:" \
            "one_time_token]" in text
        assert "/app/login/?next=/app/invite/[REDACTED:one_time_token]" in text


FIELD_TERMS = next(r["terms"] for r in policy.RULES if r["name"] == "personal_data_field")


@pytest.mark.django_db
class TestPersonalDataInQueries:
    @pytest.mark.parametrize("query", ["q=alice%40example.com", "q=alice", "email=alice%40x.io",
                                       "first_name=Alice", "ref=alice%40example.com"])
    def test_people_search_is_logged_without_the_search_term(self, store, query):
        response = HttpsClient().get(f"/app/people/?{query}&sort=name")
        text = stored_text(store)
        lines = [r for r in store.records() if r.get("trace_id") == response["X-Trace-Id"]
                 and r.get("kind") == "access"]
        key = query.split("=")[0]
        # A registry field name is redacted by the structured-field rule wherever it is a
        # key; other search parameters by the query rule.
        rule = "personal_data_field" if key in FIELD_TERMS else "personal_data"
        assert [r["path"] for r in lines] == [f"/app/people/?{key}=[REDACTED:{rule}]&sort=name"]
        assert "alice" not in text.lower()


@pytest.mark.django_db
class TestAccessLog:
    def test_problem_trace_id_appears_in_the_request_log_line(self, store):
        response = HttpsClient().get("/api/v1/no-such-thing?token=abc")
        problem = response.json()
        pipeline.flush_stores()
        lines = [r for r in store.records()
                 if r.get("kind") == "access" and r.get("trace_id") == problem["trace_id"]]
        assert response.status_code == 404
        assert len(lines) == 1
        assert lines[0]["path"] == "/api/v1/no-such-thing?token=[REDACTED:token]"
        assert lines[0]["status"] == 404
        assert lines[0]["method"] == "GET"

    def test_records_logged_during_a_request_carry_its_trace_id(self, store, settings):
        settings.ROOT_URLCONF = "tests.logs.urls"
        response = HttpsClient(raise_request_exception=False).post(
            "/test/careless/", content_type="application/json", data="{}")
        pipeline.flush_stores()
        traced = [r for r in store.records() if r.get("trace_id") == response["X-Trace-Id"]]
        assert {r["logger"] for r in traced} >= {"enclave.access", "enclave.tests",
                                                  "django.request"}


class TestHandlers:
    def test_every_required_logger_has_the_store_and_console_handlers(self):
        for name in ("", *pipeline.LOGGERS):
            handlers = [h for h in logging.getLogger(name).handlers
                        if type(h).__module__ != "_pytest.logging"]
            assert {type(h).__name__ for h in handlers} == {"StderrHandler", "StoreHandler"}
            assert all(pipeline.has_redaction(h) for h in handlers)

    def test_syslog_receives_the_same_redacted_json(self):
        card = planted.card_number()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
            handler = pipeline.JsonSysLogHandler(address=sock.getsockname())
            handler.setFormatter(pipeline.json_formatter())
            handler.addFilter(pipeline.RedactingFilter())
            logger = logging.getLogger("enclave.tests.syslog")
            logger.addHandler(handler)
            try:
                logger.warning("card %s", card)
                data = sock.recv(65536).decode()
            finally:
                logger.removeHandler(handler)
                handler.close()
        assert card not in data
        assert json.loads(data[data.index("{"):])["event"] == "card [REDACTED:card]"


class TestRedactingStream:
    def test_print_with_separate_writes_is_redacted_as_one_line(self, capsys):
        key = planted.enclave_key()
        stream = pipeline.RedactingStream(sys.stdout)
        print("password:", "hunter2-" + key[9:], file=stream)
        stream.flush()
        out = capsys.readouterr().out
        assert key[9:] not in out
        assert out.startswith("password: [REDACTED:password]")

    def test_pem_block_written_line_by_line_is_held_and_redacted(self, capsys):
        pem = planted.pem_private_key()
        stream = pipeline.RedactingStream(sys.stdout)
        for line in pem.splitlines(keepends=True):
            stream.write(line)
        stream.flush()
        out = capsys.readouterr().out
        assert out == "[REDACTED:pem]\n"


class TestExceptionReporterFilter:
    def test_sensitive_post_fields_and_headers_are_cleansed(self, rf):
        key = planted.enclave_key()
        request = rf.post("/x", {"new_password1": "hunter22", "comment": f"key {key}"},
                          HTTP_X_API_KEY="abc123", HTTP_USER_AGENT="curl/8.5",
                          HTTP_ACCEPT_LANGUAGE="en-GB")
        reporter = RedactingExceptionReporterFilter()
        post = reporter.get_post_parameters(request)
        meta = reporter.get_safe_request_meta(request)
        assert post["new_password1"] == "[REDACTED]"
        assert key not in post["comment"]
        assert meta["HTTP_X_API_KEY"] == "[REDACTED]"
        assert meta["HTTP_USER_AGENT"] == "[REDACTED]"  # personal: the registry's user_agent
        assert meta["HTTP_ACCEPT_LANGUAGE"] == "en-GB"

    def test_request_path_and_query_string_are_redacted(self, rf):
        secret = planted.enclave_key()[9:]
        request = rf.get(f"/app/invite/{secret}?q=alice&next=/app/setup/{secret}")
        meta = RedactingExceptionReporterFilter().get_safe_request_meta(request)
        assert meta["PATH_INFO"] == "/app/invite/[REDACTED:one_time_token]"
        assert meta["QUERY_STRING"] == (
            "q=[REDACTED:personal_data]&next=/app/setup/[REDACTED:one_time_token]")

    def test_settings_use_the_redacting_filter(self):
        from django.views.debug import get_default_exception_reporter_filter

        with override_settings():
            assert isinstance(get_default_exception_reporter_filter(),
                              RedactingExceptionReporterFilter)


class TestDeepValues:
    def test_deep_value_under_a_sensitive_key_does_not_crash_the_logger(self):
        deep: list = []
        for _ in range(100_000):
            deep = [deep]
        event = pipeline.redact_processor(None, "info", {"event": "x", "password": deep})
        assert event["password"] == pipeline.redact_processor(
            None, "info", {"event": "x", "password": "hunter2"})["password"]
