"""A real SMTP server on 127.0.0.1 (aiosmtpd) for the transport and pipeline tests: it
keeps what it receives and can be told to refuse recipients (4xx/5xx) or to drop the
connection."""

from __future__ import annotations

import socket

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse: dict[str, str] = {}  # recipient → SMTP reply
        self.drop_next = 0  # how many DATA commands to answer by closing the connection
        self.sessions = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.drop_next:
            self.drop_next -= 1
            server.transport.close()
            return "421 closing"
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.original_content))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refusing_port() -> tuple[socket.socket, int]:
    """A TCP port on 127.0.0.1 that is bound but not listening — connections to it are
    refused for as long as the caller keeps the socket (close it after)."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    return held, held.getsockname()[1]


class SmtpSink:
    """Start with ``with SmtpSink() as sink:``; ``sink.port``; ``sink.handler``."""

    def __enter__(self):
        self.handler = Sink()
        for attempt in range(5):  # a port found free may be taken before we bind it
            self.controller = Controller(self.handler, hostname="127.0.0.1",
                                         port=free_port())
            try:
                self.controller.start()
                break
            except OSError:
                if attempt == 4:
                    raise
        self.port = self.controller.port
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
