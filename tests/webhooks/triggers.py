"""One trigger per webhooks audit type (1200–1299), for tests/core/test_audit.py."""

from __future__ import annotations

from enclave.core.models import AuditEventType
from enclave.webhooks import actions
from tests.people.world import World
from tests.webhooks.world import webhook_endpoints


def _endpoint():
    world = World()
    return world, webhook_endpoints(world)[0]


def _created(f):
    _endpoint()


def _changed(f):
    world, endpoint = _endpoint()
    actions.do_change_webhook_endpoint(endpoint, description="CRM", actor=world.actor("owner"))


def _rotated(f):
    world, endpoint = _endpoint()
    actions.do_rotate_webhook_secret(endpoint, actor=world.actor("owner"))


def _deleted(f):
    world, endpoint = _endpoint()
    actions.do_delete_webhook_endpoint(endpoint, actor=world.actor("owner"))


def _replayed(f):
    world, _ = _endpoint()
    actions.do_replay_webhook_delivery(world.webhook_deliveries[0], actor=world.actor("owner"))


def _disabled(f):
    _, endpoint = _endpoint()
    actions.disable_failing(endpoint.pk, "the receiver answered 410 Gone")


TRIGGERS = {
    AuditEventType.WEBHOOK_ENDPOINT_CREATED: _created,
    AuditEventType.WEBHOOK_ENDPOINT_CHANGED: _changed,
    AuditEventType.WEBHOOK_SECRET_ROTATED: _rotated,
    AuditEventType.WEBHOOK_ENDPOINT_DELETED: _deleted,
    AuditEventType.WEBHOOK_DELIVERY_REPLAYED: _replayed,
    AuditEventType.WEBHOOK_ENDPOINT_DISABLED: _disabled,
}
