"""A composed email: what a receiving server sees — the headers, both parts, a DKIM
signature it accepts with the record we publish — and that nothing typed can add a
header."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re

import dkim as dkimpy
import pytest

from enclave.messaging import compose, dkim
from enclave.messaging.rendering import Rendered

PRIVATE, PUBLIC = dkim.new_key_pair()
NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
UNSUBSCRIBE = "https://app.example.com/unsubscribe/TOKEN"


def make(**changes):
    args = {"domain": "news.acme.example", "from_local": "news", "from_name": "Acme News",
            "to": "ann@example.net",
            "rendered": Rendered("Hello Ann", "<p>Hello <b>Ann</b></p>", "Hello Ann\n"),
            "message_id": "b7.p42.x1", "unsubscribe_url": UNSUBSCRIBE,
            "feedback_id": "7:3:broadcast:enclave", "selector": "enc202612",
            "private_key": PRIVATE, "now": NOW}
    return compose.message(**{**args, **changes})


def parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def record(name, timeout=5):
    assert name == b"enc202612._domainkey.news.acme.example."
    return dkim.txt_value(PUBLIC).encode()


class TestMessage:
    def test_headers_a_receiver_sees(self):
        envelope, raw = make()
        mail = parsed(raw)
        assert (mail["From"], mail["To"], mail["Subject"]) == (
            "Acme News <news@news.acme.example>", "ann@example.net", "Hello Ann")
        assert mail["Message-ID"] == "<b7.p42.x1@news.acme.example>"
        assert mail["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert mail["Feedback-ID"] == "7:3:broadcast:enclave"
        assert envelope == compose.Envelope("news@news.acme.example", "ann@example.net",
                                            "b7.p42.x1")

    @pytest.mark.parametrize("mailto", [None, "unsubscribe.42.7.20794.abcdefghijklmnopqrstuvwx"
                                              "@unsubscribe.acme.example"])
    def test_a_long_unsubscribe_header_is_written_as_is_never_as_encoded_words(self,
                                                                               mailto):
        # Mailbox providers read List-Unsubscribe raw: an RFC 2047 encoded word
        # ("=?utf-8?q?=3Chttps...") is no link to them, so no one-click unsubscribe.
        url = "https://app.example.com/unsubscribe/" + "eyJhIjoxLCJwIjo0Mn0" * 8 + ":1vS:x"
        raw = make(unsubscribe_url=url, unsubscribe_mailto=mailto)[1]
        expected = f"<{url}>" if mailto is None else (
            f"<{url}>, <mailto:{mailto}?subject=unsubscribe>")
        assert f"\r\nList-Unsubscribe: {expected}\r\n".encode() in raw
        assert b"=?" not in raw.split(b"\r\n\r\n")[0]

    def test_both_parts_text_first(self):
        mail = parsed(make()[1])
        parts = [p.get_content_type() for p in mail.iter_parts()]
        assert parts == ["text/plain", "text/html"]
        assert "<b>Ann</b>" in mail.get_body(("html",)).get_content()

    def test_the_signature_verifies_with_the_published_record(self):
        assert dkimpy.verify(make()[1], dnsfunc=record)

    def test_the_rsa_step_is_byte_for_byte_dkimpys_own(self):
        import hashlib

        from dkim.crypto import parse_pem_private_key

        key = parse_pem_private_key(PRIVATE.encode())
        digest = hashlib.sha256(b"the canonicalised headers")
        assert dkim._rsa_sign(digest, key) == dkim._DKIMPY_RSA_SIGN(digest, key)
        assert dkimpy.RSASSA_PKCS1_v1_5_sign is dkim._rsa_sign  # and dkimpy uses it

    def test_a_key_read_once_signs_exactly_as_its_pem_does(self):
        key = dkim.PrivateKey(PRIVATE)
        message = (b"From: news@news.acme.example\r\nTo: ann@example.net\r\n"
                   b"Subject: Hi\r\n\r\nHello Ann\r\n")
        by_key = dkim.sign(message, domain="news.acme.example", selector="enc202612",
                           private_key=key)
        by_pem = dkim.sign(message, domain="news.acme.example", selector="enc202612",
                           private_key=PRIVATE)
        strip_time = re.compile(rb" t=\d+;")
        assert strip_time.sub(b"", by_key) == strip_time.sub(b"", by_pem)
        assert dkimpy.verify(by_key, dnsfunc=record)
        assert repr(key) == "<dkim.PrivateKey>"

    def test_the_signature_covers_the_unsubscribe_headers(self):
        raw = make()[1]
        tampered = raw.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Nope")
        assert not dkimpy.verify(tampered, dnsfunc=record)

    def test_an_international_domain_is_written_in_its_ascii_form(self):
        assert make(to="ann@bücher.example")[0].recipient == "ann@xn--bcher-kva.example"

    def test_a_non_ascii_local_part_is_unsendable_here(self):
        with pytest.raises(compose.Unsendable):
            make(to="anné@example.net")

    @pytest.mark.parametrize("field", ["from_name", "subject"])
    def test_a_line_break_can_never_add_a_header(self, field):
        evil = "Hi\r\nBcc: everyone@example.com"
        changes = ({"from_name": evil} if field == "from_name" else
                   {"rendered": Rendered(evil, "<p>x</p>", "x\n")})
        with pytest.raises(compose.Unsendable):
            make(**changes)


class TestEncodedWords:
    def test_a_display_name_cannot_carry_a_second_address(self):
        with pytest.raises(compose.Unsendable):
            make(from_name="=?utf-8?q?PayPal_=3Cservice=40paypal=2Ecom=3E?=")


class TestWrittenOut:
    """The message is written out by hand (not by ``EmailMessage``): what a receiver's
    parser reads back is what was meant, whatever the text."""

    def test_a_non_ascii_subject_and_display_name_read_back_as_written(self):
        mail = parsed(make(from_name="Café Zoë", rendered=Rendered(
            "Grüße, Zoë — 20 % off", "<p>x</p>", "x\n"))[1])
        assert mail["Subject"] == "Grüße, Zoë — 20 % off"
        assert mail["From"].addresses[0].display_name == "Café Zoë"
        assert mail["From"].addresses[0].addr_spec == "news@news.acme.example"

    def test_a_subject_longer_than_a_line_is_folded_and_reads_back_whole(self):
        subject = "word " * 250
        raw = make(rendered=Rendered(subject.strip(), "<p>x</p>", "x\n"))[1]
        head = raw.split(b"\r\n\r\n")[0]
        assert max(len(line) for line in head.split(b"\r\n")) <= compose.LINE_LIMIT
        assert parsed(raw)["Subject"] == subject.strip()

    def test_both_parts_read_back_exactly_with_long_lines_and_any_characters(self):
        text = "Zoë's line " * 40 + "\n=_ not a boundary\n. a dot line \n\ttab end\t\n"
        html = "<p>" + "ünïcödé = " * 50 + "</p>\n"
        raw = make(rendered=Rendered("Hi", html, text))[1]
        mail = parsed(raw)
        body = raw.split(b"\r\n\r\n", 1)[1]
        assert max(len(line) for line in body.split(b"\r\n")) <= 78
        assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == text
        assert mail.get_body(("html",)).get_content().replace("\r\n", "\n") == html
        assert dkimpy.verify(raw, dnsfunc=record)

    def test_each_message_has_its_own_boundary(self):
        first, second = make()[1], make()[1]
        boundary = re.compile(rb'boundary="([^"]+)"')
        assert boundary.search(first)[1] != boundary.search(second)[1]

    @pytest.mark.parametrize("name", ["Acme\x00News", "Acme\x1bNews", "Acme\u2028News",
                                      "Acme\nNews"])
    def test_a_control_character_in_the_display_name_is_refused(self, name):
        with pytest.raises(compose.Unsendable):
            make(from_name=name)

    @pytest.mark.parametrize("to", ["ann@example.net, eve@example.org",
                                    "ann <eve@example.org>@example.net",
                                    '"ann smith"@example.net', "ann@[127.0.0.1]"])
    def test_an_address_that_is_not_one_plain_address_is_refused(self, to):
        with pytest.raises(compose.Unsendable):
            make(to=to)

    def test_an_unsubscribe_link_too_long_for_a_line_is_refused_not_encoded(self):
        with pytest.raises(compose.Unsendable):
            make(unsubscribe_url="https://app.example.com/unsubscribe/" + "x" * 1000)
