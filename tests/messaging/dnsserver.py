"""A real, tiny authoritative DNS server on 127.0.0.1 for the sender-domain tests: it
answers TXT questions over UDP from a dict the test fills (dnspython builds the wire
messages), NXDOMAIN for names it does not hold."""

from __future__ import annotations

import dataclasses
import socket
import threading

import dns.exception
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from django.conf import settings
from dns.rdtypes.ANY.TXT import TXT


class LocalDns:
    def __init__(self) -> None:
        self.txt: dict[str, list[str]] = {}
        self.questions: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def publish(self, name: str, value: str) -> None:
        self.txt.setdefault(name.lower(), []).append(value)

    def _answer(self, wire: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None  # not a DNS question: no answer, and the server carries on
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.questions.append(name)
        if name not in self.txt:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT:
            rdatas = [TXT(dns.rdataclass.IN, dns.rdatatype.TXT,
                          [value[i:i + 255].encode() for i in range(0, len(value), 255)])
                      for value in self.txt[name]]
            response.answer.append(dns.rrset.from_rdata_list(question.name, 60, rdatas))
        return response.to_wire()

    def _serve(self) -> None:
        while True:
            try:
                wire, peer = self.sock.recvfrom(4096)
                answer = self._answer(wire)
                if answer is not None:
                    self.sock.sendto(answer, peer)
            except OSError:  # closed by the test
                return

    def close(self) -> None:
        self.sock.close()


def use_servers(servers) -> object:
    """Point sender-domain checks at ``servers``; returns the previous configuration."""
    previous = settings.CONFIG
    settings.CONFIG = dataclasses.replace(settings.CONFIG, dns_servers=tuple(servers))
    return previous


def silent_server() -> socket.socket:
    """A UDP socket on 127.0.0.1 that never answers: DNS questions sent to it time out.
    Kept bound by the caller (close it after), so no other process can answer there."""
    held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    held.bind(("127.0.0.1", 0))
    return held
