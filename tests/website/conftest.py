"""Fixtures for the public website tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave.core import controls


@pytest.fixture
def test_control() -> Iterator[controls.Control]:
    """A control registered only for the duration of one test."""

    @controls.control(
        "ZZ-TEST-1",
        claim="internal claim text: checks /etc/enclave/secret-path",
        public="Test promise shown to visitors",
    )
    def check(probe: controls.Probe) -> controls.Outcome:
        return controls.passed("test evidence")

    try:
        yield controls.registry()["ZZ-TEST-1"]
    finally:
        controls._REGISTRY.pop("ZZ-TEST-1", None)


@pytest.fixture
def plans_file(tmp_path, settings) -> Path:
    """Point ENCLAVE_PLANS_FILE at a file in tmp_path (written by the test)."""
    path = tmp_path / "plans.toml"
    settings.CONFIG = dataclasses.replace(settings.CONFIG, plans_file=path)
    return path
