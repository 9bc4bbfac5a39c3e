"""Fixtures the webhook tests share: the people test world and a real HTTP receiver on
127.0.0.1, which the deployment's outbound policy is told to allow (as an operator
would allow an on-premises receiver: ``ENCLAVE_OUTBOUND_ALLOW``)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.people.world import World
from tests.webhooks import receiver as receivers


@pytest.fixture
def world(db) -> World:
    return World()


@pytest.fixture
def receiver(settings):
    settings.CONFIG = dataclasses.replace(settings.CONFIG, outbound_allow=("127.0.0.1/32",))
    running = receivers.start()
    yield running
    running.server.shutdown()
    running.server.server_close()
