"""Shared fixtures. Database tests carry ``@pytest.mark.django_db`` so they also run on
PostgreSQL (see enclave.testing.plugin)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import Client

from enclave.testing.live import run_enclave

ARTIFACTS = Path(os.environ.get("ENCLAVE_TEST_ARTIFACTS", "test-artifacts")).resolve()


class HttpsClient(Client):
    """Every request is made over HTTPS, as a browser on Enclave always is."""

    def generic(self, *args, secure=True, **kwargs):
        return super().generic(*args, secure=True, **kwargs)


@pytest.fixture
def client() -> Client:
    """A test client that speaks HTTPS (plain-HTTP tests use ``http_client``)."""
    return HttpsClient()


@pytest.fixture
def http_client() -> Client:
    """A plain-HTTP client, for the redirect/refusal behaviour."""
    return Client()


@pytest.fixture(scope="session")
def live_enclave(tmp_path_factory):
    """One running ``enclave serve`` (HTTPS + HTTP + worker) shared by the session."""
    with run_enclave(tmp_path_factory.mktemp("live") / "var") as live:
        yield live


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
