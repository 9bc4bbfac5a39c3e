"""The SMTP transport against a real SMTP server on 127.0.0.1: one connection for many
messages, and every way a server can say no mapped to sent / deferred / failed — with no
address in what is kept."""

from __future__ import annotations

from enclave.messaging import compose, transports
from tests.messaging.smtpsink import refusing_port


def envelope(to="ann@example.net"):
    return compose.Envelope("news@news.acme.example", to, "m1")


RAW = b"From: news@news.acme.example\r\nTo: ann@example.net\r\nSubject: Hi\r\n\r\nHi\r\n"


def transport(port):
    return transports.SmtpTransport("127.0.0.1", port, security="none", timeout=5)


def send_one(port, to):
    smtp = transport(port)
    try:
        return smtp.send(envelope(to), RAW)
    finally:
        smtp.close()


class TestSmtp:
    def test_many_messages_go_over_one_connection(self, sink):
        smtp = transport(sink.port)
        outcomes = [smtp.send(envelope(f"p{i}@example.net"), RAW) for i in range(5)]
        smtp.close()
        assert {o.kind for o in outcomes} == {"sent"}
        assert (len(sink.handler.received), smtp.connections) == (5, 1)

    def test_a_permanent_refusal_of_the_recipient_is_a_failed_bounce(self, sink):
        sink.handler.refuse["gone@example.net"] = "550 5.1.1 <gone@example.net> unknown"
        outcome = send_one(sink.port, "gone@example.net")
        assert outcome == transports.Outcome("failed", 550, "550 5.1.1", bounce=True)

    def test_a_temporary_refusal_is_deferred(self, sink):
        sink.handler.refuse["busy@example.net"] = "450 4.2.1 <busy@example.net> try later"
        outcome = send_one(sink.port, "busy@example.net")
        assert (outcome.kind, outcome.detail, outcome.bounce) == ("deferred", "450 4.2.1",
                                                                  False)

    def test_no_address_is_kept_from_the_servers_reply(self, sink):
        sink.handler.refuse["gone@example.net"] = "550 5.1.1 <gone@example.net> unknown"
        outcome = send_one(sink.port, "gone@example.net")
        assert "example.net" not in repr(outcome)

    def test_a_dropped_connection_is_deferred_and_the_next_send_reconnects(self, sink):
        sink.handler.drop_next = 1
        smtp = transport(sink.port)
        first = smtp.send(envelope(), RAW)
        second = smtp.send(envelope(), RAW)
        smtp.close()
        assert (first.kind, second.kind, smtp.connections) == ("deferred", "sent", 2)
        assert len(sink.handler.received) == 1

    def test_no_server_is_deferred_not_an_exception(self):
        held, port = refusing_port()
        with held:
            outcome = send_one(port, "ann@example.net")
        assert (outcome.kind, outcome.code) == ("deferred", None)
