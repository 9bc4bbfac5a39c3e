"""Billing tests: the fake Stripe and ``billing`` come from tests/billing/stripe_fixtures.py
(a plugin of tests/conftest.py, so other tests' triggers can use them too)."""

from __future__ import annotations

import pytest

from tests.people.world import World


@pytest.fixture
def world(db) -> World:
    return World()
