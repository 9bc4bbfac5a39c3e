"""Sender domains against a real DNS server on 127.0.0.1: adding one makes a DKIM key
whose record verifies it; rotation hands signing to a new key only once its record is
published; DNS that cannot be asked is a clear state; and the signature our records
describe is one a receiver accepts."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from enclave.access.principal import NotAuthorized
from enclave.core import ratelimit
from enclave.core.models import AuditEvent, AuditEventType
from enclave.core.validation import MissingReference
from enclave.messaging import access, actions, dkim, domains
from enclave.messaging.models import DkimKey, SenderDomain
from tests.messaging.dnsserver import silent_server, use_servers


def add(world, domain="news.acme.example", role="user"):
    return actions.do_add_sender_domain(world.account, domain, actor=world.actor(role))


def publish(local_dns, sender, state="pending"):
    key = DkimKey.objects.get(domain=sender, state=state)
    local_dns.publish(dkim.record_name(key.selector, sender.domain),
                      dkim.txt_value(key.public_key))
    return key


def check(world, sender):
    return actions.do_check_sender_domain(sender, actor=world.actor("user"))


@pytest.mark.django_db
class TestAdd:
    def test_adding_makes_an_unverified_domain_with_a_pending_key(self, world):
        sender = add(world, " News.ACME.example. ")
        key = DkimKey.objects.get(domain=sender)
        assert (sender.domain, sender.state, key.state) == (
            "news.acme.example", "unverified", "pending")
        assert key.selector.startswith("enc")

    def test_the_private_key_is_sealed_in_the_database(self, world):
        add(world)
        stored = DkimKey.objects.values_list("private_key", flat=True).get()
        assert stored.startswith("ek1:fields:")
        assert "PRIVATE KEY" not in stored

    def test_the_audit_row_names_the_selector_never_the_key(self, world):
        sender = add(world)
        event = AuditEvent.objects.get(event_type=AuditEventType.SENDER_DOMAIN_ADDED)
        key = DkimKey.objects.get(domain=sender)
        assert event.extra_data == {"selector": key.selector}

    @pytest.mark.parametrize("bad", ["", "localhost", "mail.internal", "10.0.0.1",
                                     "-bad-.example", "no_underscores.example",
                                     "a" * 64 + ".example", "single"])
    def test_a_name_that_is_not_a_public_domain_is_refused(self, world, bad):
        with pytest.raises(ValidationError) as caught:
            add(world, bad)
        assert list(caught.value.message_dict) == ["domain"]
        assert not SenderDomain.objects.exists()

    def test_an_international_name_is_kept_in_its_ascii_form(self, world):
        assert add(world, "bücher.example").domain == "xn--bcher-kva.example"

    def test_the_same_domain_twice_is_refused(self, world):
        add(world)
        with pytest.raises(ValidationError) as caught:
            add(world, "NEWS.acme.example")
        assert caught.value.message_dict == {"domain": [actions.senders.DUPLICATE_DOMAIN]}

    def test_an_analyst_cannot_add_a_domain(self, world):
        with pytest.raises(NotAuthorized):
            add(world, role="analyst")


@pytest.mark.django_db
class TestCheck:
    def test_a_published_record_verifies_the_domain_and_activates_its_key(self, world,
                                                                          local_dns):
        sender = add(world)
        key = publish(local_dns, sender)
        checked = check(world, sender)
        assert (checked.state, checked.verified_at is not None) == ("verified", True)
        assert DkimKey.objects.get(pk=key.pk).state == "active"
        assert f"DKIM {key.selector}: published" in checked.check_detail
        assert f"{key.selector}._domainkey.news.acme.example" in local_dns.questions

    def test_without_the_record_the_domain_stays_unverified_and_says_what_is_missing(
            self, world, local_dns):
        sender = add(world)
        checked = check(world, sender)
        key = DkimKey.objects.get(domain=sender)
        assert (checked.state, key.state) == ("unverified", "pending")
        assert f"DKIM {key.selector}: missing" in checked.check_detail
        assert access.signing_key(checked) is None

    def test_a_record_with_another_key_does_not_verify(self, world, local_dns):
        sender = add(world)
        key = DkimKey.objects.get(domain=sender)
        local_dns.publish(dkim.record_name(key.selector, sender.domain),
                          dkim.txt_value(dkim.new_key_pair()[1]))
        assert check(world, sender).state == "unverified"

    def test_spf_and_dmarc_are_reported_as_advice(self, world, local_dns):
        sender = add(world)
        publish(local_dns, sender)
        local_dns.publish("news.acme.example", "v=spf1 a mx ~all")
        detail = check(world, sender).check_detail
        assert "SPF: found" in detail
        assert "DMARC: none" in detail

    def test_when_dns_cannot_be_asked_the_state_is_unknown_with_a_reason(self, world,
                                                                          no_dns):
        checked = check(world, add(world))
        assert checked.state == "unknown"
        assert checked.check_detail.startswith("DNS could not be asked from this server")

    def test_a_verified_domain_stays_verified_when_dns_cannot_be_asked(
            self, world, local_dns, monkeypatch):
        sender = add(world)
        publish(local_dns, sender)
        check(world, sender)
        monkeypatch.setattr(domains, "LIFETIME_SECONDS", 0.2)
        with silent_server() as silent:
            use_servers([silent.getsockname()])  # the DNS server stops answering
            checked = check(world, sender)
        assert checked.state == "verified"
        assert checked.check_detail.startswith("DNS could not be asked")

    def test_a_removed_record_unverifies_the_domain(self, world, local_dns):
        sender = add(world)
        publish(local_dns, sender)
        check(world, sender)
        local_dns.txt.clear()
        checked = check(world, sender)
        assert checked.state == "unverified"
        event = AuditEvent.objects.filter(
            event_type=AuditEventType.SENDER_DOMAIN_STATE_CHANGED).latest("pk")
        assert event.extra_data == {"from": "verified", "to": "unverified"}

    def test_checks_are_limited_per_account(self, world, local_dns, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES,
                                      "sender_domain.check": "2/h"}
        sender = add(world)
        check(world, sender)
        check(world, sender)
        with pytest.raises(ratelimit.Limited):
            check(world, sender)


@pytest.mark.django_db
class TestRotation:
    def test_the_old_key_signs_until_the_new_record_is_published(self, world, local_dns):
        sender = add(world)
        first = publish(local_dns, sender)
        sender = check(world, sender)
        second = actions.do_rotate_dkim_key(sender, actor=world.actor("user"))
        assert second.selector != first.selector
        check(world, sender)
        assert access.signing_key(SenderDomain.objects.get(pk=sender.pk))[0] == first.selector
        publish(local_dns, sender)
        check(world, sender)
        assert access.signing_key(SenderDomain.objects.get(pk=sender.pk))[0] == second.selector

    def test_the_retired_key_is_destroyed(self, world, local_dns):
        sender = add(world)
        first = publish(local_dns, sender)
        check(world, sender)
        actions.do_rotate_dkim_key(sender, actor=world.actor("user"))
        publish(local_dns, sender)
        check(world, sender)
        retired = DkimKey.objects.get(pk=first.pk)
        assert (retired.state, retired.private_key) == ("retired", None)

    def test_a_second_rotation_while_one_waits_is_refused(self, world, local_dns):
        sender = add(world)
        publish(local_dns, sender)
        check(world, sender)
        actions.do_rotate_dkim_key(sender, actor=world.actor("user"))
        with pytest.raises(MissingReference):
            actions.do_rotate_dkim_key(sender, actor=world.actor("user"))

    def test_rotation_before_the_first_key_is_published_is_refused(self, world):
        with pytest.raises(MissingReference) as caught:
            actions.do_rotate_dkim_key(add(world), actor=world.actor("user"))
        assert caught.value.message_dict == {"domain": [actions.senders.ROTATION_WAITING]}


@pytest.mark.django_db
class TestSigning:
    def test_a_receiver_verifies_our_signature_with_the_record_we_told_them_to_publish(
            self, world, local_dns):
        import dkim as dkimpy
        import dns.resolver

        sender = add(world)
        publish(local_dns, sender)
        sender = check(world, sender)
        selector, pem = access.signing_key(sender)
        message = (b"From: News <news@news.acme.example>\r\nTo: ann@example.net\r\n"
                   b"Subject: Hello\r\nList-Unsubscribe: <https://x.example/u>\r\n"
                   b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nHi Ann\r\n")
        signed = dkim.sign(message, domain=sender.domain, selector=selector,
                           private_key=pem)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.nameserver_ports = ["127.0.0.1"], {
            "127.0.0.1": local_dns.port}

        def dnsfunc(name, timeout=5):
            answer = resolver.resolve(name.decode().rstrip("."), "TXT")
            return b"".join(answer[0].strings)

        assert dkimpy.verify(signed, dnsfunc=dnsfunc)
        header = signed.split(b"\r\n\r\n")[0].decode()
        assert "list-unsubscribe-post" in header.lower().split("h=")[1].split(";")[0]

    def test_a_changed_message_fails_verification(self, world, local_dns):
        import dkim as dkimpy

        sender = add(world)
        key = publish(local_dns, sender)
        sender = check(world, sender)
        selector, pem = access.signing_key(sender)
        signed = dkim.sign(b"From: a@news.acme.example\r\nSubject: Hi\r\n\r\nBody\r\n",
                           domain=sender.domain, selector=selector, private_key=pem)
        record = dkim.txt_value(key.public_key).encode()
        assert not dkimpy.verify(signed.replace(b"Body", b"Evil"),
                                 dnsfunc=lambda name, timeout=5: record)


@pytest.mark.django_db
class TestSecondReview:
    def test_names_are_read_as_idna_2008(self, world):
        assert add(world, "exßample.de").domain == "xn--example-1va.de"  # not "exssample"

    @pytest.mark.parametrize("bad", ["xn--zz.com", "kubernetes.default.svc", "mail.test",
                                     ("a" * 60 + ".") * 4 + "com"])
    def test_names_that_can_never_verify_are_refused(self, world, bad):
        with pytest.raises(ValidationError):
            add(world, bad)

    def test_a_malformed_record_holding_our_key_does_not_verify(self, world, local_dns):
        sender = add(world)
        key = DkimKey.objects.get(domain=sender)
        local_dns.publish(dkim.record_name(key.selector, sender.domain),
                          f"garbage v=DKIM1; p={key.public_key}")
        assert check(world, sender).state == "unverified"

    def test_adding_domains_is_limited_per_account(self, world, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES,
                                      "sender_domain.add": "1/h"}
        add(world)
        with pytest.raises(ratelimit.Limited):
            add(world, "other.acme.example")
