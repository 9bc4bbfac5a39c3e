"""Email service providers through django-anymail: sending with anymail's real Postmark
backend to a local stand-in of Postmark's HTTP API (the only part that cannot run here),
its outcomes, account mail, and the providers' delivery webhooks — basic auth, Mailgun's
signature, replays, forgeries and malformed bodies — recorded as delivery events and
suppressions."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from enclave import config
from enclave.audience.subscriptions import suppressed_among
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.messaging import pipeline, transactional, transports
from enclave.messaging.models import DeliveryEvent, OutboxMessage, TransactionalMessage
from enclave.people.actions import do_erase_person
from enclave.people.models import Person
from tests.conftest import HttpsClient
from tests.messaging.test_broadcasts import Setup


class PostmarkApi:
    """Postmark's ``POST /email`` on 127.0.0.1: keeps what it is sent and answers as
    Postmark does — ``reply`` sets the status and body of the next answers."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, dict]] = []
        self.reply: tuple[int, dict] | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.received.append((dict(self.headers), body))
                status, answer = api.reply or (200, {
                    "ErrorCode": 0, "Message": "OK", "To": body["To"],
                    "MessageID": secrets.token_hex(8),
                    "SubmittedAt": "2026-12-07T09:00:00Z"})
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def postmark():
    api = PostmarkApi()
    yield api
    api.close()


def use_esp(settings, tmp_path, esp: str, *, url: str | None = None,
            signing_key: str | None = None) -> dict[str, str]:
    """Configure ``esp`` with generated credentials in files; the secrets."""
    made = {"key": secrets.token_urlsafe(16),
            "auth": f"enclave:{secrets.token_urlsafe(16)}"}
    (tmp_path / "esp-key").write_text(made["key"])
    (tmp_path / "esp-webhook").write_text(made["auth"])
    signing_file = None
    if signing_key:
        signing_file = tmp_path / "esp-signing"
        signing_file.write_text(signing_key)
    settings.CONFIG = dataclasses.replace(
        settings.CONFIG, email_backend="esp", esp=esp, esp_api_key_file=tmp_path / "esp-key",
        esp_api_url=url, esp_webhook_secret_file=tmp_path / "esp-webhook",
        esp_webhook_signing_key_file=signing_file)
    return made


@pytest.fixture
def setup(world, local_dns) -> Setup:
    return Setup(world, local_dns)


def queued_broadcast(setup, *emails) -> OutboxMessage:
    for address in emails:
        setup.person(address, first_name="Ann")
    broadcast = setup.queue(setup.broadcast())
    return OutboxMessage.objects.filter(broadcast=broadcast).order_by("pk").first()


def fresh(row):
    return type(row).objects.get(pk=row.pk)


@pytest.mark.django_db
class TestSending:
    def test_a_broadcast_goes_through_the_providers_api_with_its_headers(
            self, setup, postmark, settings, tmp_path):
        secret = use_esp(settings, tmp_path, "postmark", url=postmark.url)
        row = queued_broadcast(setup, "ann@example.net")
        assert pipeline.run_once(transports.configured()) == {"sent": 1}
        headers, body = postmark.received[0]
        sent = {h["Name"]: h["Value"] for h in body["Headers"]}
        assert (headers["X-Postmark-Server-Token"], body["To"], body["Subject"]) == (
            secret["key"], "ann@example.net", "Hi")
        assert (body["Metadata"], body["TrackOpens"], body["TrackLinks"]) == (
            {"enclave": signed(f"b{row.pk}")}, False, "None")
        assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert sent["Message-ID"] == f"<{fresh(row).message_id}@news.acme.example>"
        assert "<p>Hi Ann</p>" in body["HtmlBody"]
        assert (fresh(row).state, fresh(row).detail) == ("sent", "esp sent")

    def test_a_recipient_the_provider_refuses_fails_without_a_suppression_of_ours(
            self, setup, postmark, settings, tmp_path):
        use_esp(settings, tmp_path, "postmark", url=postmark.url)
        row = queued_broadcast(setup, "ann@example.net")
        postmark.reply = (422, {"ErrorCode": 406, "Message": (
            "You tried to send to recipient(s) that have been marked as inactive.\n"
            "Found inactive addresses: ann@example.net.\n"
            "Inactive recipients are ones that have generated a hard bounce or a spam "
            "complaint.")})
        assert pipeline.run_once(transports.configured()) == {"failed": 1}
        assert fresh(row).detail == "esp refused recipient"
        # The provider's list is shared by every account: whether the address bounced is
        # for its webhooks to say.
        assert suppressed_among(setup.world.account.pk, ["ann@example.net"]) == set()

    @pytest.mark.parametrize(("status", "state", "detail"), [
        (500, "deferred", "esp 500"), (429, "deferred", "esp 429"),
        (401, "deferred", "esp 401"), (400, "failed", "esp 400")])
    def test_the_providers_answer_decides_retry_or_failure(
            self, setup, postmark, settings, tmp_path, status, state, detail):
        use_esp(settings, tmp_path, "postmark", url=postmark.url)
        row = queued_broadcast(setup, "ann@example.net")
        postmark.reply = (status, {"ErrorCode": 10, "Message": "ann@example.net says no"})
        assert pipeline.run_once(transports.configured()) == {state: 1}
        assert (fresh(row).state, fresh(row).detail) == (state, detail)

    def test_an_unreachable_provider_defers(self, setup, settings, tmp_path):
        from enclave.testing.live import free_port

        use_esp(settings, tmp_path, "postmark", url=f"http://127.0.0.1:{free_port()}/")
        row = queued_broadcast(setup, "ann@example.net")
        assert pipeline.run_once(transports.configured()) == {"deferred": 1}
        assert fresh(row).detail == "esp unreachable"

    def test_a_transactional_message_carries_its_own_reference(
            self, setup, postmark, settings, tmp_path):
        from enclave.messaging import actions

        use_esp(settings, tmp_path, "postmark", url=postmark.url)
        message, _ = actions.do_send_message(
            setup.world.account, template=setup.template, sender=setup.sender,
            from_local="orders", email="zed@example.net", idempotency_key="k",
            actor=setup.owner)
        assert transactional.run_once(transports.configured()) == {"sent": 1}
        body = postmark.received[0][1]
        assert body["Metadata"] == {"enclave": signed(f"t{message.pk}")}
        assert "List-Unsubscribe" not in {h["Name"] for h in body.get("Headers", [])}

    def test_a_display_name_holding_an_address_never_changes_the_from_address(
            self, postmark):
        """The pages refuse such names (_clean_from); the transport holds on its own."""
        from email.utils import getaddresses

        from enclave.messaging import compose, dkim
        from enclave.messaging.rendering import Rendered

        private_pem, _ = dkim.new_key_pair()
        envelope, raw = compose.message(
            domain="news.acme.example", from_local="news",
            from_name="Ü <ceo@victim.example>", to="ann@example.net",
            rendered=Rendered("Hi", "<p>Hi</p>", "Hi"), message_id="m.1",
            unsubscribe_url=None, feedback_id="1:1:test:enclave", selector="s1",
            private_key=private_pem, now=clock.now())
        envelope = dataclasses.replace(envelope, ref="b1")
        transport = transports.EspTransport("anymail.backends.postmark.EmailBackend",
                                            {"server_token": "k", "api_url": postmark.url})
        assert transport.send(envelope, raw).kind == "sent"
        sent_from = postmark.received[0][1]["From"]
        assert [address for _, address in getaddresses([sent_from])] == [
            "news@news.acme.example"]

    def test_an_answer_it_could_not_read_after_a_2xx_counts_as_sent(
            self, setup, postmark, settings, tmp_path):
        use_esp(settings, tmp_path, "postmark", url=postmark.url)
        row = queued_broadcast(setup, "ann@example.net")
        postmark.reply = (200, b"<html>a proxy's page, not JSON</html>")
        assert pipeline.run_once(transports.configured()) == {"sent": 1}
        assert fresh(row).detail == "esp 200 unread"

    def test_a_provider_without_tracking_settings_still_sends(self, setup, postmark):
        from enclave.messaging.esp import ESPS

        setup.person("ann@example.net", first_name="Ann")
        setup.queue(setup.broadcast())
        postmark.reply = (201, {"messageId": "<m-1@smtp-relay.brevo.com>"})
        transport = transports.EspTransport(ESPS["brevo"].backend,
                                            {"api_key": "k", "api_url": postmark.url},
                                            tracking_flags=ESPS["brevo"].tracking_flags)
        assert pipeline.run_once(transport) == {"sent": 1}
        assert "trackOpens" not in json.dumps(postmark.received[0][1])

    def test_account_mail_goes_through_the_provider_too(self, postmark, settings, tmp_path):
        from django.core import mail

        use_esp(settings, tmp_path, "postmark", url=postmark.url)
        settings.EMAIL_BACKEND = "enclave.messaging.esp.AccountMailBackend"
        mail.send_mail("Reset", "Your link", "no-reply@acme.example", ["ann@example.net"])
        assert [body["To"] for _, body in postmark.received] == ["ann@example.net"]


def signed(base: str) -> str:
    from enclave.messaging.actions.delivery import signed_ref

    return signed_ref(base)


def bounce(ref, *, event_id=42, kind="HardBounce", email="ann@example.net") -> dict:
    return {"RecordType": "Bounce", "Type": kind, "ID": event_id, "Email": email,
            "BouncedAt": clock.now().isoformat(), "MessageID": "m-1",
            "Metadata": {"enclave": ref}}


def basic(auth: str) -> str:
    return "Basic " + base64.b64encode(auth.encode()).decode()


def post(payload, auth: str | None, esp="postmark", content_type="application/json"):
    extra = {"HTTP_AUTHORIZATION": basic(auth)} if auth else {}
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return HttpsClient().post(f"/webhooks/esp/{esp}/", body, content_type=content_type,
                              **extra)


def refusals() -> list[dict]:
    return list(AuditEvent.objects.filter(event_type=AuditEventType.ESP_WEBHOOK_REFUSED)
                .values_list("extra_data", flat=True))


@pytest.mark.django_db
class TestPostmarkWebhook:
    @pytest.fixture
    def sent(self, setup, settings, tmp_path):
        secret = use_esp(settings, tmp_path, "postmark")
        row = queued_broadcast(setup, "ann@example.net")
        return row, secret["auth"]

    def test_a_hard_bounce_is_recorded_and_suppresses_the_address(self, sent, setup):
        row, auth = sent
        assert post(bounce(signed(f"b{row.pk}")), auth).status_code == 200
        event = DeliveryEvent.objects.get()
        assert (event.kind, event.person_id, event.broadcast_id, event.esp) == (
            "bounced", row.person_id, row.broadcast_id, "postmark")
        assert suppressed_among(setup.world.account.pk, ["ann@example.net"]) == {
            "ann@example.net"}

    def test_the_broadcasts_progress_counts_the_bounce(self, sent):
        from enclave.messaging.models import Broadcast

        row, auth = sent
        post(bounce(signed(f"b{row.pk}")), auth)
        post(bounce(signed(f"b{row.pk}"), event_id=43), auth)  # the same person bounced twice
        assert pipeline.progress(Broadcast.objects.get(pk=row.broadcast_id))["bounced"] == 1

    def test_a_replayed_event_is_recorded_once(self, sent):
        row, auth = sent
        responses = [post(bounce(signed(f"b{row.pk}")), auth).status_code for _ in range(2)]
        assert (responses, DeliveryEvent.objects.count()) == ([200, 200], 1)

    def test_a_delivery_without_an_event_id_is_recorded_once_too(self, sent):
        row, auth = sent
        delivered = {"RecordType": "Delivery", "Recipient": "ann@example.net",
                     "DeliveredAt": clock.now().isoformat(), "MessageID": "m-1",
                     "Metadata": {"enclave": signed(f"b{row.pk}")}}
        for _ in range(2):
            post(delivered, auth)
        assert list(DeliveryEvent.objects.values_list("kind", flat=True)) == ["delivered"]

    def test_a_soft_bounce_is_recorded_without_suppressing(self, sent, setup):
        row, auth = sent
        post(bounce(signed(f"b{row.pk}"), kind="SoftBounce"), auth)
        assert DeliveryEvent.objects.get().kind == "bounced"
        assert suppressed_among(setup.world.account.pk, ["ann@example.net"]) == set()

    @pytest.mark.parametrize("auth", ["enclave:wrong", "someone:else", ":"])
    def test_a_request_with_the_wrong_secret_is_refused_audited_and_changes_nothing(
            self, sent, setup, auth):
        row, _ = sent
        response = post(bounce(signed(f"b{row.pk}")), auth)
        assert (response.status_code, DeliveryEvent.objects.count()) == (400, 0)
        assert suppressed_among(setup.world.account.pk, ["ann@example.net"]) == set()
        assert refusals() == [{"esp": "postmark", "why": "authentication"}]

    @pytest.mark.parametrize("header", [None, "Bearer x", "Basic", "Basic !!!"])
    def test_a_request_without_basic_auth_is_challenged_or_refused(self, sent, header):
        row, _ = sent
        extra = {"HTTP_AUTHORIZATION": header} if header else {}
        response = HttpsClient().post("/webhooks/esp/postmark/",
                                      json.dumps(bounce(signed(f"b{row.pk}"))),
                                      content_type="application/json", **extra)
        if header == "Basic !!!":  # credentials given, but not decodable: wrong ones
            assert response.status_code == 400
        else:
            assert (response.status_code, response["WWW-Authenticate"]) == (
                401, 'Basic realm="enclave webhooks"')
        assert DeliveryEvent.objects.count() == 0

    def test_refusals_are_audited_only_up_to_the_limit(self, sent, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES,
                                      "esp.webhook.refused": "2/h"}
        row, _ = sent
        statuses = [post(bounce(signed(f"b{row.pk}")), "enclave:wrong").status_code
                    for _ in range(4)]
        assert (statuses, len(refusals())) == ([400] * 4, 2)

    @pytest.mark.parametrize("body", ["not json", "[1, 2", "[1, 2]", "\"text\"",
                                      json.dumps({"FromFull": {}})])
    def test_a_malformed_body_is_refused_and_audited(self, sent, body):
        _, auth = sent
        assert post(body, auth).status_code == 400
        assert refusals() == [{"esp": "postmark", "why": "malformed"}]

    def test_an_event_about_no_message_of_ours_is_ignored(self, sent):
        row, auth = sent
        forged = signed(f"b{row.pk}")[:-1] + ("0" if signed(f"b{row.pk}")[-1] != "0" else "1")
        for ref in (f"b{row.pk}", forged, signed("b999999"), "x1", "t", "b1e3", None, 5,
                    ["b1"], signed(f"t{row.pk}")):
            assert post(bounce(ref), auth).status_code == 200
        assert DeliveryEvent.objects.count() == 0

    def test_an_event_for_an_address_the_person_no_longer_has_does_not_suppress(
            self, sent, setup):
        row, auth = sent
        Person.objects.filter(pk=row.person_id).update(email="ann@new.example")
        post(bounce(signed(f"b{row.pk}")), auth)
        assert DeliveryEvent.objects.count() == 1
        assert suppressed_among(setup.world.account.pk,
                                ["ann@example.net", "ann@new.example"]) == set()

    @pytest.mark.parametrize("kind", ["Blocked", "Transient", "VirusNotification"])
    def test_blocks_and_temporary_bounces_do_not_suppress(self, sent, setup, kind):
        row, auth = sent
        post(bounce(signed(f"b{row.pk}"), kind=kind), auth)
        assert DeliveryEvent.objects.count() == 1
        assert suppressed_among(setup.world.account.pk, ["ann@example.net"]) == set()

    def test_an_event_dated_in_the_future_is_ignored(self, sent):
        import datetime as dt

        row, auth = sent
        ahead = bounce(signed(f"b{row.pk}"))
        ahead["BouncedAt"] = (clock.now() + dt.timedelta(days=2)).isoformat()
        post(ahead, auth)
        assert DeliveryEvent.objects.count() == 0

    def test_a_stale_event_is_ignored(self, sent):
        import datetime as dt

        row, auth = sent
        old = bounce(signed(f"b{row.pk}"))
        old["BouncedAt"] = (clock.now() - dt.timedelta(days=31)).isoformat()
        post(old, auth)
        assert DeliveryEvent.objects.count() == 0

    def test_another_providers_path_and_an_unconfigured_one_are_404(self, sent, settings):
        _, auth = sent
        assert post(bounce("b1"), auth, esp="mailgun").status_code == 404
        settings.CONFIG = dataclasses.replace(settings.CONFIG, email_backend="file")
        assert post(bounce("b1"), auth).status_code == 404

    def test_erasing_the_person_erases_their_delivery_events(self, sent, world):
        row, auth = sent
        post(bounce(signed(f"b{row.pk}")), auth)
        do_erase_person(Person.objects.get(pk=row.person_id), actor=world.actor("owner"))
        assert DeliveryEvent.objects.count() == 0

    def test_a_transactional_message_to_nobody_is_recorded_without_suppressing(
            self, sent, setup):
        from enclave.messaging import actions

        _, auth = sent
        message, _ = actions.do_send_message(
            setup.world.account, template=setup.template, sender=setup.sender,
            from_local="orders", email="zed@example.net", idempotency_key="k",
            actor=setup.owner)
        post(bounce(signed(f"t{message.pk}"), email="zed@example.net"), auth)
        event = DeliveryEvent.objects.get()
        assert (event.message_id, event.person_id, event.broadcast_id) == (
            message.pk, None, None)
        # Nothing is left to tell the reported address is the one it was sent to.
        assert suppressed_among(setup.world.account.pk, ["zed@example.net"]) == set()
        assert TransactionalMessage.objects.filter(pk=message.pk).exists()


@pytest.mark.django_db
class TestBrevoWebhook:
    def event(self, custom: str) -> dict:
        return {"event": "hard_bounce", "email": "ann@example.net",
                "ts_epoch": int(clock.now().timestamp() * 1000), "message-id": "<m-1>",
                "X-Mailin-custom": custom}

    def test_a_bounce_is_recorded_once_and_suppresses(self, setup, settings, tmp_path):
        auth = use_esp(settings, tmp_path, "brevo")["auth"]
        row = queued_broadcast(setup, "ann@example.net")
        event = self.event(json.dumps({"enclave": signed(f"b{row.pk}")}))
        assert [post(event, auth, esp="brevo").status_code for _ in range(2)] == [200, 200]
        assert list(DeliveryEvent.objects.values_list("kind", flat=True)) == ["bounced"]
        assert suppressed_among(setup.world.account.pk, ["ann@example.net"]) == {
            "ann@example.net"}

    @pytest.mark.parametrize("custom", ["[1, 2]", '"b1"', "null", "5"])
    def test_metadata_that_is_not_an_object_is_ignored_not_an_error(
            self, setup, settings, tmp_path, custom):
        auth = use_esp(settings, tmp_path, "brevo")["auth"]
        assert post(self.event(custom), auth, esp="brevo").status_code == 200
        assert DeliveryEvent.objects.count() == 0


def mailgun_event(signing_key: str, ref: str, *, token=None, tamper=False) -> dict:
    token = token or secrets.token_hex(25)
    timestamp = str(int(clock.now().timestamp()))
    signature = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(),
                         hashlib.sha256).hexdigest()
    if tamper:
        signature = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": {"event": "complained", "recipient": "ann@example.net",
                           "timestamp": clock.now().timestamp(), "id": "e-1",
                           "user-variables": {"enclave": ref},
                           "message": {"headers": {"message-id": "m-1"}}}}


@pytest.mark.django_db
class TestMailgunWebhook:
    @pytest.fixture
    def sent(self, setup, settings, tmp_path):
        signing_key = secrets.token_hex(16)
        secret = use_esp(settings, tmp_path, "mailgun", signing_key=signing_key)
        return queued_broadcast(setup, "ann@example.net"), secret["auth"], signing_key

    def test_a_signed_complaint_is_recorded_and_suppresses(self, sent, setup):
        row, auth, key = sent
        response = post(mailgun_event(key, signed(f"b{row.pk}")), auth, esp="mailgun")
        assert response.status_code == 200
        assert DeliveryEvent.objects.get().kind == "complained"
        assert suppressed_among(setup.world.account.pk, ["ann@example.net"]) == {
            "ann@example.net"}

    def test_a_forged_signature_is_refused_even_with_the_basic_auth(self, sent):
        row, auth, key = sent
        response = post(mailgun_event(key, signed(f"b{row.pk}"), tamper=True), auth, esp="mailgun")
        assert (response.status_code, DeliveryEvent.objects.count()) == (400, 0)
        assert refusals() == [{"esp": "mailgun", "why": "authentication"}]

    def test_without_its_signing_key_the_webhook_is_off(self, sent, settings):
        row, auth, key = sent
        settings.CONFIG = dataclasses.replace(settings.CONFIG,
                                              esp_webhook_signing_key_file=None)
        response = post(mailgun_event(key, signed(f"b{row.pk}")), auth, esp="mailgun")
        assert response.status_code == 404

    def test_a_signature_older_than_the_allowed_skew_is_refused(self, sent):
        import datetime as dt

        row, auth, key = sent
        with clock.frozen(clock.now() - dt.timedelta(minutes=16)):
            old = mailgun_event(key, signed(f"b{row.pk}"))
        response = post(old, auth, esp="mailgun")
        assert (response.status_code, refusals()) == (
            400, [{"esp": "mailgun", "why": "stale signature"}])

    def test_a_replayed_signed_event_is_recorded_once(self, sent):
        row, auth, key = sent
        event = mailgun_event(key, signed(f"b{row.pk}"))
        for _ in range(3):
            assert post(event, auth, esp="mailgun").status_code == 200
        assert DeliveryEvent.objects.count() == 1


class TestConfiguration:
    def base(self, tmp_path, **env) -> dict[str, str]:
        return {"ENCLAVE_ENV": "test", "ENCLAVE_VAR_DIR": str(tmp_path / "var"),
                "ENCLAVE_EMAIL_BACKEND": "esp", **env}

    def test_an_unknown_provider_is_refused_naming_the_setting(self, tmp_path):
        with pytest.raises(config.ConfigError) as caught:
            config.load(self.base(tmp_path, ENCLAVE_ESP="carrier-pigeon"))
        assert str(caught.value).startswith("ENCLAVE_ESP: the esp email backend needs one of")

    def test_a_provider_needing_a_key_without_its_file_is_refused(self, tmp_path):
        with pytest.raises(config.ConfigError) as caught:
            config.load(self.base(tmp_path, ENCLAVE_ESP="postmark",
                                  ENCLAVE_ESP_API_KEY_FILE=str(tmp_path / "missing")))
        assert caught.value.setting == "ENCLAVE_ESP_API_KEY_FILE"

    @pytest.mark.parametrize(("url", "ok"), [
        ("https://api.example.com/", True), ("http://127.0.0.1:8025/", True),
        ("http://api.example.com/", False), ("ftp://127.0.0.1/", False)])
    def test_the_api_url_is_https_unless_it_is_this_machine(self, tmp_path, url, ok):
        (tmp_path / "key").write_text("k")
        env = self.base(tmp_path, ENCLAVE_ESP="postmark", ENCLAVE_ESP_API_URL=url,
                        ENCLAVE_ESP_API_KEY_FILE=str(tmp_path / "key"))
        if ok:
            assert config.load(env).esp_api_url == url
        else:
            with pytest.raises(config.ConfigError):
                config.load(env)

    @pytest.mark.parametrize("content", ["", "   ", "nocolon", ":password", "user:", "ü:x"])
    def test_a_webhook_secret_that_is_not_user_and_password_is_refused(self, tmp_path,
                                                                       content):
        (tmp_path / "secret").write_text(content)
        with pytest.raises(config.ConfigError) as caught:
            config.load(self.base(tmp_path, ENCLAVE_ESP="amazon_ses",
                                  ENCLAVE_ESP_WEBHOOK_SECRET_FILE=str(tmp_path / "secret")))
        assert caught.value.setting == "ENCLAVE_ESP_WEBHOOK_SECRET_FILE"

    def test_an_empty_api_key_file_is_refused(self, tmp_path):
        (tmp_path / "key").write_text("\n")
        with pytest.raises(config.ConfigError) as caught:
            config.load(self.base(tmp_path, ENCLAVE_ESP="postmark",
                                  ENCLAVE_ESP_API_KEY_FILE=str(tmp_path / "key")))
        assert caught.value.setting == "ENCLAVE_ESP_API_KEY_FILE"

    def test_amazon_ses_needs_no_key_file(self, tmp_path):
        assert config.load(self.base(tmp_path, ENCLAVE_ESP="amazon_ses")).esp == "amazon_ses"
