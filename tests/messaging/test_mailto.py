"""The mailto unsubscribe address (``messaging.mailto``): offered in List-Unsubscribe only
when the deployment receives mail (``ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN``), signed so it
names one person and broadcast, and honoured when the provider's inbound webhook posts a
message to it — with the webhook's own checks, replays and forgeries included."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import email
import email.policy
import json
import re

import pytest

from enclave import config
from enclave.audience.models import ConsentRecord, Subscription
from enclave.audience.subscriptions import do_change_subscription, do_create_topic
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.messaging import mailto, pipeline, transports
from enclave.messaging.models import Broadcast
from enclave.people.actions import do_erase_person
from enclave.people.models import Person
from tests.conftest import HttpsClient
from tests.messaging.test_broadcasts import Setup
from tests.messaging.test_esp import basic, use_esp

DOMAIN = "unsubscribe.acme.example"


@pytest.fixture
def setup(world, local_dns) -> Setup:
    return Setup(world, local_dns)


def receive_at(settings, domain: str | None = DOMAIN) -> None:
    settings.CONFIG = dataclasses.replace(settings.CONFIG, unsubscribe_mail_domain=domain)


@pytest.fixture
def sent(setup, settings, tmp_path):
    """A queued broadcast to Ann, the Postmark inbound webhook's credentials and Ann's
    mailto address."""
    secret = use_esp(settings, tmp_path, "postmark")
    receive_at(settings)
    ann = setup.person("ann@example.net")
    broadcast = setup.queue(setup.broadcast())
    return broadcast, ann, secret["auth"], mailto.address(ann, broadcast.pk)


def inbound(to: str, **fields) -> dict:
    """A Postmark inbound webhook body (their documented JSON) for a message to ``to``."""
    return {"FromFull": {"Email": "ann@example.net", "Name": "Ann"},
            "ToFull": [{"Email": to, "Name": ""}], "OriginalRecipient": to,
            "Subject": "unsubscribe", "TextBody": "", "MessageID": "6c3a-1",
            "Headers": [], **fields}


def post(body, auth: str | None, esp: str = "postmark"):
    extra = {"HTTP_AUTHORIZATION": basic(auth)} if auth else {}
    return HttpsClient().post(f"/webhooks/esp/{esp}/inbound/", json.dumps(body),
                              content_type="application/json", **extra)


def status_of(person, topic) -> str:
    return Subscription.objects.get(person=person, topic=topic).status


@pytest.mark.django_db
class TestAddress:
    def test_no_address_when_the_deployment_receives_no_mail(self, setup, settings):
        receive_at(settings, None)
        ann = setup.person("ann@example.net")
        assert mailto.address(ann, 1) is None

    def test_the_address_names_ids_only_and_fits_a_local_part(self, setup, settings):
        receive_at(settings)
        ann = setup.person("ann@example.net")
        address = mailto.address(ann, 7)
        local, _, domain = address.rpartition("@")
        assert domain == DOMAIN
        assert re.fullmatch(rf"unsubscribe\.{ann.pk}\.7\.\d+\.[a-z2-7]{{24}}", local)
        assert len(local) <= 64

    def test_it_reads_back_as_its_person_and_broadcast_whatever_the_case(self, sent):
        broadcast, ann, _, address = sent
        assert mailto.read(address.upper()) == (ann, Broadcast.objects.get(pk=broadcast.pk))

    @pytest.mark.parametrize("change", [
        lambda a: a.replace(DOMAIN, "elsewhere.example"),
        lambda a: a[:-len(DOMAIN) - 2] + ("a" if a[-len(DOMAIN) - 2] != "a" else "b")
        + "@" + DOMAIN,
        lambda a: re.sub(r"^unsubscribe\.(\d+)", lambda m: f"unsubscribe.{int(m[1]) + 1}", a),
        lambda a: "x" * 300 + a,
        lambda a: a.replace("@", "@@"),
    ])
    def test_an_altered_address_names_nobody(self, sent, change):
        assert mailto.read(change(sent[3])) is None

    def test_an_address_older_than_its_lifetime_names_nobody(self, sent):
        with clock.frozen(clock.now() + mailto.LIFETIME + dt.timedelta(days=1)):
            assert mailto.read(sent[3]) is None

    def test_an_erased_persons_address_names_nobody(self, sent, setup):
        do_erase_person(sent[1], actor=setup.owner)
        assert mailto.read(sent[3]) is None

    def test_another_person_given_the_id_after_a_restore_is_not_named(self, sent):
        import uuid

        Person.objects.filter(pk=sent[1].pk).update(row_id=uuid.uuid4())
        assert mailto.read(sent[3]) is None

    def test_an_address_longer_than_a_mail_path_allows_is_not_offered(self, setup,
                                                                       settings):
        # A domain the configuration accepts (199 characters) and a local part within 64:
        # together past the 254 an address may have, which read() refuses.
        receive_at(settings, ".".join(c * 63 for c in "abc") + ".example")
        ann = setup.person("ann@example.net")
        address = mailto.address(ann, 10**9)
        assert address is None or len(address) <= 254


@pytest.mark.django_db
class TestHeader:
    def test_list_unsubscribe_offers_the_link_first_then_the_signed_mailto(
            self, setup, settings, sink, smtp):
        receive_at(settings)
        ann = setup.person("ann@example.net")
        broadcast = setup.queue(setup.broadcast())
        assert pipeline.run_once(smtp) == {"sent": 1}
        raw = sink.handler.received[0][2]
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        link, address = re.fullmatch(r"<(https://[^>]+)>, <mailto:([^?>]+)\?subject="
                                     r"unsubscribe>", mail["List-Unsubscribe"]).groups()
        assert link.startswith("https://")
        assert mailto.read(address) == (ann, Broadcast.objects.get(pk=broadcast.pk))
        signed = re.search(rb"\bh=([^;]+);", raw.replace(b"\r\n\t", b"")).group(1).lower()
        assert b"list-unsubscribe" in signed

    def test_without_a_mail_domain_only_the_link_is_offered(self, setup, sink, smtp):
        setup.person("ann@example.net")
        setup.queue(setup.broadcast())
        pipeline.run_once(smtp)
        mail = email.message_from_bytes(sink.handler.received[0][2],
                                        policy=email.policy.default)
        assert "mailto:" not in mail["List-Unsubscribe"]

    def test_the_provider_is_handed_the_mailto_too(self, setup, settings, tmp_path):
        from tests.messaging.test_esp import PostmarkApi

        api = PostmarkApi()
        try:
            use_esp(settings, tmp_path, "postmark", url=api.url)
            receive_at(settings)
            setup.person("ann@example.net")
            setup.queue(setup.broadcast())
            pipeline.run_once(transports.configured())
            sent = {h["Name"]: h["Value"] for h in api.received[0][1]["Headers"]}
        finally:
            api.close()
        assert f"@{DOMAIN}?subject=unsubscribe>" in sent["List-Unsubscribe"]


@pytest.mark.django_db
class TestInbound:
    def test_mail_to_the_address_unsubscribes_from_the_broadcasts_topics(self, sent,
                                                                          setup):
        _, ann, auth, address = sent
        assert post(inbound(address), auth).status_code == 200
        assert status_of(ann, setup.topic) == "unsubscribed"
        assert ConsentRecord.objects.filter(person=ann, method="unsubscribe_mail").count() == 1

    def test_only_the_broadcasts_topics_are_left(self, sent, setup):
        _, ann, auth, address = sent
        other = do_create_topic(setup.world.account, "offers", "Offers",
                                consent_text="Offers.", actor=setup.owner)
        do_change_subscription(ann, other, True, method="app", actor=setup.owner)
        before = status_of(ann, other)
        post(inbound(address), auth)
        assert (before, status_of(ann, other)) == ("pending", "pending")

    def test_a_replayed_message_changes_nothing_more(self, sent):
        _, ann, auth, address = sent
        for _ in range(3):
            assert post(inbound(address), auth).status_code == 200
        assert ConsentRecord.objects.filter(person=ann, method="unsubscribe_mail").count() == 1

    def test_the_address_in_to_is_enough_without_an_envelope_recipient(self, sent, setup):
        _, ann, auth, address = sent
        post(inbound(address, OriginalRecipient=None), auth)
        assert status_of(ann, setup.topic) == "unsubscribed"

    @pytest.mark.parametrize("to", ["ann@example.net", f"unsubscribe.1.1.1.{'a' * 24}@{DOMAIN}",
                                    "postmaster@" + DOMAIN])
    def test_mail_to_any_other_address_is_dropped(self, sent, setup, to):
        _, ann, auth, _ = sent
        assert post(inbound(to), auth).status_code == 200
        assert status_of(ann, setup.topic) == "subscribed"

    def test_the_wrong_secret_is_refused_audited_and_changes_nothing(self, sent, setup):
        _, ann, _, address = sent
        assert post(inbound(address), "enclave:wrong").status_code == 400
        assert status_of(ann, setup.topic) == "subscribed"
        assert list(AuditEvent.objects.filter(
            event_type=AuditEventType.ESP_WEBHOOK_REFUSED).values_list(
            "extra_data", flat=True)) == [{"esp": "postmark", "why": "authentication"}]

    def test_no_credentials_get_a_challenge(self, sent):
        response = post(inbound(sent[3]), None)
        assert (response.status_code, response["WWW-Authenticate"]) == (
            401, 'Basic realm="enclave webhooks"')

    def test_a_tracking_event_posted_to_the_inbound_url_is_refused(self, sent, setup):
        _, ann, auth, address = sent
        response = post(inbound(address, RecordType="Bounce"), auth)
        assert response.status_code == 400
        assert status_of(ann, setup.topic) == "subscribed"

    @pytest.mark.parametrize("body", ["not json", "[]", '{"ToFull": 5}'])
    def test_a_malformed_body_is_a_400_that_changes_nothing(self, sent, setup, body):
        _, ann, auth, _ = sent
        response = HttpsClient().post("/webhooks/esp/postmark/inbound/", body,
                                      content_type="application/json",
                                      HTTP_AUTHORIZATION=basic(auth))
        assert response.status_code == 400
        assert status_of(ann, setup.topic) == "subscribed"

    def test_the_inbound_url_is_404_when_the_deployment_receives_no_mail(self, sent,
                                                                          settings):
        receive_at(settings, None)
        assert post(inbound(sent[3]), sent[2]).status_code == 404

    def test_another_providers_inbound_url_is_404(self, sent):
        assert post(inbound(sent[3]), sent[2], esp="mailgun").status_code == 404

    def test_nothing_of_the_message_reaches_the_log(self, sent, capfd):
        _, _, auth, address = sent
        post(inbound(address, Subject="Secret subject"), auth)
        out = "".join(capfd.readouterr())
        assert address.split("@")[0] not in out
        assert "Secret subject" not in out
        assert "ann@example.net" not in out


    def test_a_to_list_too_long_to_read_quickly_is_not_parsed(self, sent, setup):
        import time

        _, ann, auth, address = sent
        many = ", ".join(f"u{i}@example.com" for i in range(20_000))
        raw = f"From: x@example.org\r\nTo: {many}\r\nSubject: hi\r\n\r\nhi\r\n"
        started = time.monotonic()
        response = post(inbound(address, RawEmail=raw), auth)
        assert (response.status_code, status_of(ann, setup.topic)) == (200, "unsubscribed")
        assert time.monotonic() - started < 2


def brevo_inbound(to: str, **fields) -> dict:
    """A Brevo inbound parsing webhook body (their documented JSON) for a message to
    ``to``."""
    return {"items": [{"Uuid": ["8d5f5b4e-1"], "MessageId": "<m-1@example.net>",
                       "Headers": {"Delivered-To": to, "To": to, "From": "ann@example.net",
                                   "Subject": "unsubscribe"},
                       "RawTextBody": "", "Attachments": [], **fields}]}


def sparkpost_relay(to: str, raw: bytes) -> dict:
    """One message of a SparkPost relay webhook batch (their documented JSON)."""
    return {"msys": {"relay_message": {
        "protocol": "smtp", "rcpt_to": to, "msg_from": "someone@example.org",
        "content": {"email_rfc822": base64.b64encode(raw).decode(),
                    "email_rfc822_is_base64": True}}}}


@pytest.mark.django_db
class TestInboundProviders:
    @pytest.fixture
    def sent_by(self, setup, settings, tmp_path):
        def made(esp: str):
            secret = use_esp(settings, tmp_path, esp)
            receive_at(settings)
            ann = setup.person("ann@example.net")
            broadcast = setup.queue(setup.broadcast())
            return ann, secret["auth"], mailto.address(ann, broadcast.pk)
        return made

    def test_brevo_mail_to_the_address_unsubscribes(self, sent_by, setup):
        ann, auth, address = sent_by("brevo")
        assert post(brevo_inbound(address), auth, esp="brevo").status_code == 200
        assert status_of(ann, setup.topic) == "unsubscribed"

    def test_brevo_attachments_are_never_downloaded(self, sent_by, setup, monkeypatch):
        import requests

        fetched = []
        monkeypatch.setattr(requests, "get", lambda *a, **k: fetched.append(a))
        ann, auth, address = sent_by("brevo")
        body = brevo_inbound(address, Attachments=[
            {"Name": "logo.png", "ContentType": "image/png", "ContentLength": 3,
             "ContentID": None, "DownloadToken": "dl-token"}])
        assert post(body, auth, esp="brevo").status_code == 200
        assert (fetched, status_of(ann, setup.topic)) == ([], "unsubscribed")

    def test_a_sparkpost_batch_is_not_lost_for_one_message_anymail_cannot_read(
            self, sent_by, setup):
        ann, auth, address = sent_by("sparkpost")
        unreadable = sparkpost_relay(f"postmaster@{DOMAIN}",
                                     b"To: postmaster@x\r\nSubject: caf\xe9\r\n\r\n\xe9t\xe9\r\n")
        ours = sparkpost_relay(address, f"From: ann@example.net\r\nTo: {address}\r\n"
                                        f"Subject: unsubscribe\r\n\r\n".encode())
        response = post([unreadable, ours], auth, esp="sparkpost")
        assert (response.status_code, status_of(ann, setup.topic)) == (200, "unsubscribed")


class TestConfiguration:
    def base(self, tmp_path, **env) -> dict[str, str]:
        (tmp_path / "key").write_text("k")
        (tmp_path / "secret").write_text("user:password")
        return {"ENCLAVE_ENV": "test", "ENCLAVE_VAR_DIR": str(tmp_path / "var"),
                "ENCLAVE_EMAIL_BACKEND": "esp", "ENCLAVE_ESP": "postmark",
                "ENCLAVE_ESP_API_KEY_FILE": str(tmp_path / "key"),
                "ENCLAVE_ESP_WEBHOOK_SECRET_FILE": str(tmp_path / "secret"), **env}

    def test_the_domain_is_read_in_lower_case(self, tmp_path):
        loaded = config.load(self.base(tmp_path,
                                       ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN="Unsub.Acme.Example"))
        assert loaded.unsubscribe_mail_domain == "unsub.acme.example"

    @pytest.mark.parametrize("value", ["localhost", "-x.example.com", "a..example.com",
                                       "unsub.example.com/x", "user@example.com"])
    def test_a_value_that_is_not_a_domain_is_refused(self, tmp_path, value):
        with pytest.raises(config.ConfigError) as caught:
            config.load(self.base(tmp_path, ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN=value))
        assert caught.value.setting == "ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN"

    def test_it_needs_the_webhook_secret(self, tmp_path):
        env = self.base(tmp_path, ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN=DOMAIN)
        del env["ENCLAVE_ESP_WEBHOOK_SECRET_FILE"]
        with pytest.raises(config.ConfigError, match="ENCLAVE_ESP_WEBHOOK_SECRET_FILE"):
            config.load(env)

    def test_it_needs_an_email_provider(self, tmp_path):
        env = self.base(tmp_path, ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN=DOMAIN,
                        ENCLAVE_EMAIL_BACKEND="smtp", ENCLAVE_EMAIL_HOST="smtp.example")
        with pytest.raises(config.ConfigError) as caught:
            config.load(env)
        assert caught.value.setting == "ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN"


    def test_with_mailgun_it_needs_the_signing_key(self, tmp_path):
        # Without it the inbound webhook is a 404: every address offered would be lost.
        env = self.base(tmp_path, ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN=DOMAIN, ENCLAVE_ESP="mailgun")
        with pytest.raises(config.ConfigError) as caught:
            config.load(env)
        assert caught.value.setting == "ENCLAVE_UNSUBSCRIBE_MAIL_DOMAIN"
