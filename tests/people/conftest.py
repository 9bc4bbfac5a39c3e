"""Fixtures for people, team and audit tests."""

from __future__ import annotations

import pytest

from tests.people.world import World


@pytest.fixture
def world(db) -> World:
    return World()
