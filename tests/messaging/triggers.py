"""One trigger per messaging audit type (1100–1199), for tests/core/test_audit.py."""

from __future__ import annotations

from enclave.core.models import AuditEventType
from enclave.messaging import actions
from tests.people.world import World


def _template(world: World):
    return actions.do_create_template(world.account, "Welcome", "html", "Hi",
                                      "<p>Hello {{ person.first_name }}</p>",
                                      actor=world.actor("owner"))


def _created(f):
    _template(World())


def _changed(f):
    world = World()
    actions.do_change_template(_template(world), subject="Hello", actor=world.actor("owner"))


def _deleted(f):
    world = World()
    actions.do_delete_template(_template(world), actor=world.actor("owner"))


TRIGGERS = {
    AuditEventType.TEMPLATE_CREATED: _created,
    AuditEventType.TEMPLATE_CHANGED: _changed,
    AuditEventType.TEMPLATE_DELETED: _deleted,
}


def _sender(world: World):
    return actions.do_add_sender_domain(world.account, "news.acme.example",
                                        actor=world.actor("owner"))


def _with_dns(steps):
    """Run ``steps(world, publish)`` against a live local DNS server."""
    from django.conf import settings

    from enclave.messaging import dkim
    from enclave.messaging.models import DkimKey
    from tests.messaging.dnsserver import LocalDns, use_servers

    server = LocalDns()
    previous = use_servers([("127.0.0.1", server.port)])

    def publish(sender):
        key = DkimKey.objects.get(domain=sender, state="pending")
        server.publish(dkim.record_name(key.selector, sender.domain),
                       dkim.txt_value(key.public_key))

    try:
        steps(World(), publish)
    finally:
        settings.CONFIG = previous
        server.close()


def _verified(world, publish):
    sender = _sender(world)
    publish(sender)
    return actions.do_check_sender_domain(sender, actor=world.actor("owner"))


def _rotated(world, publish):
    return actions.do_rotate_dkim_key(_verified(world, publish), actor=world.actor("owner"))


def _activated(world, publish):
    sender = _verified(world, publish)
    actions.do_rotate_dkim_key(sender, actor=world.actor("owner"))
    publish(sender)
    actions.do_check_sender_domain(sender, actor=world.actor("owner"))


def _removed(f):
    world = World()
    actions.do_remove_sender_domain(_sender(world), actor=world.actor("owner"))


TRIGGERS.update({
    AuditEventType.SENDER_DOMAIN_ADDED: lambda f: _sender(World()),
    AuditEventType.SENDER_DOMAIN_STATE_CHANGED: lambda f: _with_dns(_verified),
    AuditEventType.SENDER_DOMAIN_REMOVED: _removed,
    AuditEventType.DKIM_KEY_CREATED: lambda f: _with_dns(_rotated),
    AuditEventType.DKIM_KEY_ACTIVATED: lambda f: _with_dns(_activated),
})


def _broadcast(world, publish, *, queue=False):
    from enclave.audience.subscriptions import do_change_subscription, do_create_topic

    owner = world.actor("owner")
    sender = _verified(world, publish)
    topic = do_create_topic(world.account, "news", "News", consent_text="News.",
                            double_opt_in=False, actor=owner)
    # Someone to send to, so a queued broadcast stays queued (one with nobody is sent).
    do_change_subscription(world.person, topic, True, method="app", actor=owner)
    broadcast = actions.do_create_broadcast(
        world.account, "June", template=_template(world), sender=sender, from_local="news",
        topics=[topic.pk], actor=owner)
    return actions.do_queue_broadcast(broadcast, actor=owner) if queue else broadcast


def _broadcast_deleted(world, publish):
    actions.do_delete_broadcast(_broadcast(world, publish), actor=world.actor("owner"))


def _broadcast_cancelled(world, publish):
    actions.do_cancel_broadcast(_broadcast(world, publish, queue=True),
                                actor=world.actor("owner"))


TRIGGERS.update({
    AuditEventType.BROADCAST_CREATED: lambda f: _with_dns(_broadcast),
    AuditEventType.BROADCAST_QUEUED: lambda f: _with_dns(
        lambda world, publish: _broadcast(world, publish, queue=True)),
    AuditEventType.BROADCAST_CANCELLED: lambda f: _with_dns(_broadcast_cancelled),
    AuditEventType.BROADCAST_DELETED: lambda f: _with_dns(_broadcast_deleted),
})


def _scheduled(world, publish):
    import datetime as dt

    from enclave.core import clock

    return actions.do_schedule_broadcast(_broadcast(world, publish),
                                         clock.now() + dt.timedelta(hours=1),
                                         actor=world.actor("owner"))


def _not_started(world, publish):
    import datetime as dt

    from enclave.core import clock
    from enclave.messaging.models import SenderDomain

    broadcast = _scheduled(world, publish)
    SenderDomain.objects.filter(pk=broadcast.sender_id).update(state="unverified")
    actions.start_due_broadcasts(now=clock.now() + dt.timedelta(hours=2))


def _paused(world, publish):
    return actions.do_pause_broadcast(_broadcast(world, publish, queue=True),
                                      actor=world.actor("owner"))


def _resumed(world, publish):
    actions.do_resume_broadcast(_paused(world, publish), actor=world.actor("owner"))


def _test_sent(world, publish):
    actions.do_send_test_broadcast(_broadcast(world, publish), actor=world.actor("owner"))


def _throttled(world, publish):
    actions.do_throttle_sender_domain(_sender(world), 5, actor=world.actor("owner"))


TRIGGERS.update({
    AuditEventType.BROADCAST_SCHEDULED: lambda f: _with_dns(_scheduled),
    AuditEventType.BROADCAST_NOT_STARTED: lambda f: _with_dns(_not_started),
    AuditEventType.BROADCAST_PAUSED: lambda f: _with_dns(_paused),
    AuditEventType.BROADCAST_RESUMED: lambda f: _with_dns(_resumed),
    AuditEventType.BROADCAST_TEST_SENT: lambda f: _with_dns(_test_sent),
    AuditEventType.SENDER_DOMAIN_THROTTLE_CHANGED: lambda f: _with_dns(_throttled),
})


def _postal_address(f):
    world = World()
    actions.do_set_postal_address(world.account, "1 Harbour Street",
                                  actor=world.actor("owner"))


TRIGGERS[AuditEventType.POSTAL_ADDRESS_CHANGED] = _postal_address


def _message_queued(world, publish):
    actions.do_send_message(world.account, template=_template(world),
                            sender=_verified(world, publish), from_local="orders",
                            person_id=world.person.pk, idempotency_key="trigger",
                            actor=world.actor("owner"))


TRIGGERS[AuditEventType.MESSAGE_QUEUED] = lambda f: _with_dns(_message_queued)


def _esp_webhook_refused(f):
    """A provider's webhook posted with the wrong secret."""
    import dataclasses

    from django.conf import settings

    from tests.conftest import HttpsClient

    secret = f["tmp_path"] / "esp-webhook"
    secret.write_text("enclave:webhook-secret")
    previous = settings.CONFIG
    settings.CONFIG = dataclasses.replace(previous, email_backend="esp", esp="postmark",
                                          esp_api_key_file=secret,
                                          esp_webhook_secret_file=secret)
    try:
        HttpsClient().post("/webhooks/esp/postmark/", "{}", content_type="application/json",
                           HTTP_AUTHORIZATION="Basic d3Jvbmc6c2VjcmV0")  # wrong:secret
    finally:
        settings.CONFIG = previous


TRIGGERS[AuditEventType.ESP_WEBHOOK_REFUSED] = _esp_webhook_refused
