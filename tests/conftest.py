"""Shared fixtures. Database tests carry ``@pytest.mark.django_db`` so they also run on
PostgreSQL (see enclave.testing.plugin)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import Client

from enclave.testing.live import run_enclave

# The fake Stripe and billing turned on against it (tests/billing, and the audit triggers).
pytest_plugins = ["tests.billing.stripe_fixtures"]
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


@pytest.fixture(autouse=True)
def _erasure_journal(tmp_path):
    """Each test's erasure tombstone journal (a file in the secrets directory) is its own,
    so a restore in one test never re-applies another test's erasures."""
    from enclave.backups import tombstones

    with tombstones.use_journal(tmp_path / "secrets" / "erasures.jsonl") as path:
        yield path


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Each test starts with empty in-process rate counters: every test client comes from
    127.0.0.1, so sign-up and reset requests of earlier tests would otherwise spend the
    per-IP and per-address limits of later ones."""
    from enclave.core.ratelimit import rate_limiter

    limiter = rate_limiter()
    if hasattr(limiter, "reset"):
        limiter.reset()


@pytest.fixture(scope="session")
def _suite_dns():
    """One DNS server on 127.0.0.1 for the whole suite (tests.messaging.dnsserver)."""
    from tests.messaging.dnsserver import LocalDns

    server = LocalDns()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _hermetic_dns(_suite_dns):
    """No test asks the internet's DNS: sender-domain checks go to the suite's own server,
    which starts each test knowing no names (a test publishes what it needs, or uses
    the ``local_dns`` / ``no_dns`` fixtures)."""
    from django.conf import settings

    from tests.messaging.dnsserver import use_servers

    _suite_dns.txt.clear()
    _suite_dns.questions.clear()
    previous = use_servers([("127.0.0.1", _suite_dns.port)])
    yield _suite_dns
    settings.CONFIG = previous


@pytest.fixture
def local_dns(_hermetic_dns):
    """The suite's DNS server (empty at the start of each test), for tests that publish
    records (``local_dns.publish(name, text)``) and read ``local_dns.questions``."""
    return _hermetic_dns


@pytest.fixture
def no_dns(monkeypatch):
    """DNS that cannot be asked: the only server never answers, and the wait for it is
    cut short."""
    from enclave.messaging import domains
    from tests.messaging.dnsserver import silent_server, use_servers

    monkeypatch.setattr(domains, "LIFETIME_SECONDS", 0.2)
    with silent_server() as silent:
        use_servers([silent.getsockname()])  # _hermetic_dns puts the config back
        yield


@pytest.fixture(autouse=True)
def _job_queue():
    """The test var/ directory has the embedded job queue's folders, as ``enclave serve``
    prepares them, so a test that runs its on-commit callbacks can queue jobs (nobody runs
    them; ``tests.identity.helpers.mailing`` runs them in-process, ``job_queue`` reads
    them). Afterwards the Celery app forgets its cached connections, so a test that
    points it at another broker (tests/core/test_jobs.py) publishes there."""
    from django.conf import settings

    from enclave.celery import app

    for key in ("data_folder_in", "control_folder"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get(key)  # filesystem only
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
    yield
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture(scope="session")
def live_enclave(tmp_path_factory):
    """One running ``enclave serve`` (HTTPS + HTTP + worker) shared by the session."""
    with run_enclave(tmp_path_factory.mktemp("live") / "var") as live:
        yield live


@pytest.fixture(scope="session")
def live_with_accounts(tmp_path_factory):
    """A second running ``enclave serve`` for tests that write accounts and members into
    it (tests/live_accounts.py): doing so in ``live_enclave`` would make its one-time
    owner set-up link (tests/website/test_browser.py) invalid."""
    with run_enclave(tmp_path_factory.mktemp("live-accounts") / "var") as live:
        yield live


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
