"""Audit log: every event type is emitted by at least one action, inside its transaction."""

import pytest
from django.db import transaction

from enclave.core import audit
from enclave.core.models import AuditEvent, AuditEventType
from tests.apikeys.triggers import TRIGGERS as APIKEYS_TRIGGERS
from tests.audience.triggers import TRIGGERS as AUDIENCE_TRIGGERS
from tests.backups.triggers import TRIGGERS as BACKUPS_TRIGGERS
from tests.billing.triggers import TRIGGERS as BILLING_TRIGGERS
from tests.events.triggers import TRIGGERS as EVENTS_TRIGGERS
from tests.identity.triggers import TRIGGERS as IDENTITY_TRIGGERS
from tests.keys.triggers import TRIGGERS as KEYS_TRIGGERS
from tests.logs.triggers import TRIGGERS as LOGS_TRIGGERS
from tests.messaging.triggers import TRIGGERS as MESSAGING_TRIGGERS
from tests.people.triggers import TRIGGERS as PEOPLE_TRIGGERS
from tests.webhooks.triggers import TRIGGERS as WEBHOOKS_TRIGGERS


def trigger_environment_stamped():
    from enclave.core.environment import do_stamp_environment
    from enclave.core.models import DeploymentStamp

    DeploymentStamp.objects.all().delete()
    do_stamp_environment()


def trigger_credential_exposed(http_client):
    http_client.get("/api/v1/health", HTTP_HOST="localhost", HTTP_AUTHORIZATION="Bearer x")


def trigger_controls_recorded():
    from enclave.core import controls
    from enclave.core.actions import do_record_control_results

    probe = controls.Probe("https://127.0.0.1:1", None, "localhost", None)
    do_record_control_results(controls.run_all(probe, only={"ENV-1"}))


def trigger_dependency_audit_recorded(tmp_path):
    import argparse

    from enclave.scanning.cli import add_audit_arguments, deps_audit

    db = tmp_path / "advisories"
    db.mkdir()
    lock = tmp_path / "lock.txt"
    lock.write_text("django==5.2.19\n")
    parser = argparse.ArgumentParser()
    add_audit_arguments(parser)
    deps_audit(parser.parse_args(["--advisory-db", str(db), "--requirements", str(lock)]))


def trigger_owner_setup_issued():
    from enclave.identity.actions import do_issue_owner_setup_link

    do_issue_owner_setup_link()


def trigger_owner_created():
    from enclave.accounts.onboarding import do_create_first_owner
    from enclave.identity.actions import do_issue_owner_setup_link

    link = do_issue_owner_setup_link()
    do_create_first_owner(link.rsplit("/", 1)[1], "owner@example.com", "a long passphrase 42")


TRIGGERS = {
    AuditEventType.ENVIRONMENT_STAMPED: lambda f: trigger_environment_stamped(),
    AuditEventType.CREDENTIAL_EXPOSED: lambda f: trigger_credential_exposed(f["http_client"]),
    AuditEventType.CONTROLS_RECORDED: lambda f: trigger_controls_recorded(),
    AuditEventType.DEPENDENCY_AUDIT_RECORDED: lambda f: trigger_dependency_audit_recorded(
        f["tmp_path"]),
    AuditEventType.OWNER_SETUP_ISSUED: lambda f: trigger_owner_setup_issued(),
    AuditEventType.OWNER_CREATED: lambda f: trigger_owner_created(),
}
TRIGGERS.update(IDENTITY_TRIGGERS)
TRIGGERS.update(KEYS_TRIGGERS)
TRIGGERS.update(LOGS_TRIGGERS)
TRIGGERS.update(PEOPLE_TRIGGERS)
TRIGGERS.update(BACKUPS_TRIGGERS)
TRIGGERS.update(APIKEYS_TRIGGERS)
TRIGGERS.update(EVENTS_TRIGGERS)
TRIGGERS.update(AUDIENCE_TRIGGERS)
TRIGGERS.update(MESSAGING_TRIGGERS)
TRIGGERS.update(WEBHOOKS_TRIGGERS)
TRIGGERS.update(BILLING_TRIGGERS)


@pytest.mark.django_db
class TestEveryEventTypeIsEmitted:
    @pytest.mark.parametrize("event_type", list(AuditEventType), ids=lambda e: e.name)
    def test_event_type_is_emitted_by_an_action(self, event_type, http_client, tmp_path,
                                                request):
        assert event_type in TRIGGERS, f"no action emits {event_type.name}; add a trigger"
        # The audit log is append-only (no DELETE on PostgreSQL): look only at new rows.
        before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        TRIGGERS[event_type]({"http_client": http_client, "tmp_path": tmp_path,
                              "request": request})
        assert AuditEvent.objects.filter(id__gt=before, event_type=event_type).exists()


@pytest.mark.django_db(transaction=True)
class TestRecord:
    def test_record_outside_a_transaction_is_refused(self):
        with pytest.raises(RuntimeError, match="inside the action's transaction"):
            audit.record(AuditEventType.CONTROLS_RECORDED)

    def test_record_inside_a_transaction_writes_a_row(self):
        with transaction.atomic():
            audit.record(AuditEventType.CONTROLS_RECORDED, extra={"n": 1})
        event = AuditEvent.objects.get(event_type=AuditEventType.CONTROLS_RECORDED)
        assert event.extra_data == {"n": 1}


class TestClientIp:
    """The one decision of who the client is (throttling, key allowlists, audit rows)."""

    @staticmethod
    def request(peer: str, real: str | None = None):
        from django.test import RequestFactory

        extra = {"REMOTE_ADDR": peer}
        if real is not None:
            extra["HTTP_X_REAL_IP"] = real
        return RequestFactory().get("/", **extra)

    @staticmethod
    def behind_proxy(settings, *proxies: str) -> None:
        import dataclasses

        settings.CONFIG = dataclasses.replace(settings.CONFIG, behind_proxy=True,
                                              trusted_proxies=proxies)

    def test_peer_is_the_client_without_a_proxy(self):
        from enclave.core.audit import client_ip

        assert client_ip(self.request("198.51.100.7", real="203.0.113.9")) == "198.51.100.7"

    def test_trusted_proxy_names_the_client_with_x_real_ip(self, settings):
        from enclave.core.audit import client_ip

        self.behind_proxy(settings, "10.0.0.0/24")
        assert client_ip(self.request("10.0.0.5", real="203.0.113.9")) == "203.0.113.9"

    def test_untrusted_peer_cannot_claim_another_address(self, settings):
        from enclave.core.audit import client_ip

        self.behind_proxy(settings, "10.0.0.0/24")
        assert client_ip(self.request("198.51.100.7", real="203.0.113.9")) == "198.51.100.7"

    def test_malformed_x_real_ip_falls_back_to_the_peer(self, settings):
        from enclave.core.audit import client_ip

        self.behind_proxy(settings, "10.0.0.0/24")
        assert client_ip(self.request("10.0.0.5", real="not-an-ip")) == "10.0.0.5"
