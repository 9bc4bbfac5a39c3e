"""Fixtures the messaging tests share: the people test world, a real SMTP sink on
127.0.0.1 (aiosmtpd) and an SMTP transport to it."""

from __future__ import annotations

import pytest

from enclave.messaging import transports
from tests.messaging.smtpsink import SmtpSink
from tests.people.world import World


@pytest.fixture
def world(db) -> World:
    return World()


@pytest.fixture
def sink():
    with SmtpSink() as running:
        yield running


@pytest.fixture
def smtp(sink):
    transport = transports.SmtpTransport("127.0.0.1", sink.port, security="none", timeout=5)
    yield transport
    transport.close()
