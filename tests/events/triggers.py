"""One trigger per events audit type (550–599), for tests/core/test_audit.py."""

from __future__ import annotations

import datetime as dt

from enclave.core import clock
from enclave.core.models import AuditEventType
from enclave.events import actions, schema
from tests.apikeys.factories import make_key
from tests.people.world import World


def _principal(world: World):
    from enclave.apikeys.auth import authenticate_token

    token, _ = make_key(world.account, world.members["owner"], scopes=["events:write"])
    return authenticate_token(token, "127.0.0.1")


def _ingest(f):
    world = World()
    payload = schema.parse(b'{"type": "track", "event": "e", "message_id": "m"}')
    actions.do_ingest_events(world.account, payload.events, actor=_principal(world))


def _purge(f):
    _ingest(f)
    with clock.travel(dt.timedelta(hours=25)):
        actions.do_purge_message_ids()


TRIGGERS = {
    AuditEventType.EVENTS_INGESTED: _ingest,
    AuditEventType.EVENT_MESSAGE_IDS_PURGED: _purge,
}
