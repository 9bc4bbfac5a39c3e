"""Transactional messages: a template to one person or address, queued once per
idempotency key, sent by the pipeline with a broadcast's guarantees, leaving no address
or variables behind once final; and POST/GET /api/v1/messages."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from enclave.audience.subscriptions import do_suppress_address, suppressed_among
from enclave.core import clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.core.validation import MissingReference
from enclave.messaging import actions, pipeline, tasks, transactional
from enclave.messaging.actions import messages
from enclave.messaging.models import CapturedMessage, SenderDomain, TransactionalMessage
from enclave.people.actions import do_erase_person
from enclave.people.models import Person
from tests.api.conftest import ApiClient
from tests.apikeys.factories import make_key
from tests.messaging.test_broadcasts import Setup
from tests.messaging.test_pipeline import received

ORDER = "<p>Hi {{ person.first_name }}, order {{ data.order.number }} is on its way.</p>"


@pytest.fixture
def setup(world, local_dns) -> Setup:
    made = Setup(world, local_dns)
    made.template = actions.do_change_template(made.template, subject="Order "
                                               "{{ data.order.number }}", source=ORDER,
                                               actor=made.owner)
    return made


def send(setup, *, key="k-1", person=None, email=None, data=None, **kwargs):
    if person is None and email is None:
        email = "ann@example.net"
    return actions.do_send_message(
        setup.world.account, template=setup.template, sender=setup.sender,
        from_local=kwargs.pop("from_local", "orders"), person_id=person, email=email,
        data={"order": {"number": "A-17"}} if data is None else data,
        idempotency_key=key, actor=kwargs.pop("actor", setup.owner), **kwargs)


def row(message) -> TransactionalMessage:
    return TransactionalMessage.objects.get(pk=message.pk)


@pytest.mark.django_db
class TestQueueing:
    def test_a_message_is_queued_once_per_key_and_the_retry_gets_the_first_back(
            self, setup):
        first, queued = send(setup)
        again, queued_again = send(setup)
        assert (queued, queued_again, again.pk) == (True, False, first.pk)
        assert TransactionalMessage.objects.count() == 1

    def test_the_same_key_with_another_request_is_refused(self, setup):
        send(setup)
        with pytest.raises(ValidationError) as caught:
            send(setup, data={"order": {"number": "B-2"}})
        assert caught.value.message_dict == {"idempotency_key": [messages.KEY_REUSED]}

    def test_keys_are_per_account(self, setup, world):
        send(setup)
        theirs = world.other_actor()
        sender = actions.do_add_sender_domain(world.other, "news.other.example",
                                              actor=theirs)
        SenderDomain.objects.filter(pk=sender.pk).update(state="verified")
        sender.state = "verified"
        template = actions.do_create_template(world.other, "T", "html", "Hi", "<p>Hi</p>",
                                              actor=theirs)
        message, queued = actions.do_send_message(
            world.other, template=template, sender=sender, from_local="orders",
            email="ann@example.net", idempotency_key="k-1", actor=theirs)
        assert (queued, message.account_id) == (True, world.other.pk)

    def test_neither_the_key_nor_the_address_nor_the_variables_are_stored_in_clear(
            self, setup):
        message, _ = send(setup, key="reset-zed@example.net", email="zed@example.net",
                          data={"secret_word": "swordfish"})
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {TransactionalMessage._meta.db_table} "  # noqa: S608 — test, model table name
                           "WHERE id = %s", [message.pk])
            stored = " ".join(str(value) for value in cursor.fetchone())
        assert ("zed@example.net" not in stored, "swordfish" not in stored) == (True, True)
        assert row(message).to_address == "zed@example.net"

    def test_an_address_of_one_of_the_accounts_people_is_sent_as_to_that_person(
            self, setup):
        ann = setup.person("ann@example.net", subscribed=None, first_name="Ann")
        message, _ = send(setup, email="ANN@example.net")
        assert (row(message).person_id, row(message).to_address) == (ann.pk, None)

    def test_an_unverified_sender_domain_is_refused(self, setup):
        SenderDomain.objects.filter(pk=setup.sender.pk).update(state="unverified")
        setup.sender.state = "unverified"
        with pytest.raises(MissingReference):
            send(setup)
        assert not TransactionalMessage.objects.exists()

    def test_another_accounts_person_looks_like_a_missing_one(self, setup, world):
        with pytest.raises(MissingReference) as caught:
            send(setup, person=world.other_person.pk)
        assert caught.value.message_dict == {"to": [messages.NO_SUCH_PERSON]}

    @pytest.mark.parametrize(("change", "field"), [
        ({"key": ""}, "idempotency_key"), ({"key": "k" * 256}, "idempotency_key"),
        ({"key": "clé"}, "idempotency_key"), ({"key": "a\nb"}, "idempotency_key"),
        ({"email": "not an address"}, "to"),
        ({"email": "a@example.net", "person": 1}, "to"),
        ({"data": ["a list"]}, "data"),
        ({"data": {"big": "x" * (16 * 1024)}}, "data"),
        ({"data": {"nan": float("nan")}}, "data"),
        ({"from_local": "a b"}, "from_local"),
    ])
    def test_bad_input_is_refused_naming_the_field(self, setup, change, field):
        with pytest.raises(ValidationError) as caught:
            send(setup, **change)
        assert list(caught.value.message_dict) == [field]

    def test_variables_nested_too_deeply_are_refused(self, setup):
        deep: dict = {}
        inner = deep
        for _ in range(messages.DATA_MAX_DEPTH):
            inner["x"] = {}
            inner = inner["x"]
        with pytest.raises(ValidationError) as caught:
            send(setup, data=deep)
        assert list(caught.value.message_dict) == ["data"]

    def test_a_role_without_email_manage_cannot_send(self, setup, world):
        from django.core.exceptions import PermissionDenied

        with pytest.raises(PermissionDenied):
            send(setup, actor=world.actor("analyst"))

    def test_queueing_is_audited_without_the_address_or_variables(self, setup):
        message, _ = send(setup, email="zed@example.net")
        send(setup, email="zed@example.net")  # the retry is not a second message
        events = list(AuditEvent.objects.filter(event_type=AuditEventType.MESSAGE_QUEUED))
        assert [e.extra_data for e in events] == [
            {"message": str(message.row_id), "template": setup.template.pk}]

    def test_a_replay_naming_the_addresses_person_instead_is_another_request(self, setup):
        ann = setup.person("ann@example.net", subscribed=None)
        send(setup, email="ann@example.net")
        with pytest.raises(ValidationError) as caught:  # never "yes, that is the one"
            send(setup, person=ann.pk)
        assert caught.value.message_dict == {"idempotency_key": [messages.KEY_REUSED]}

    def test_a_retry_is_the_same_request_after_the_address_became_a_persons(self, setup):
        first, _ = send(setup, email="zed@example.net")
        setup.person("zed@example.net", subscribed=None)
        again, queued = send(setup, email="zed@example.net")
        assert (again.pk, queued) == (first.pk, False)

    def test_an_archived_persons_address_is_sent_as_to_nobody(self, setup):
        from enclave.core import clock as core_clock

        setup.person("ann@example.net", subscribed=None, archived_at=core_clock.now())
        message, _ = send(setup, email="ann@example.net")
        assert (row(message).person_id, row(message).to_address) == (None, "ann@example.net")

    def test_a_person_erased_while_queueing_is_a_missing_person_not_an_error(
            self, setup, monkeypatch):
        from django.db import IntegrityError

        ann = setup.person("ann@example.net", subscribed=None)

        def erased_meanwhile(**fields):  # what the commit's foreign-key check raises
            raise IntegrityError("violates foreign key constraint")

        monkeypatch.setattr(TransactionalMessage.objects, "create", erased_meanwhile)
        with pytest.raises(MissingReference) as caught:
            send(setup, person=ann.pk)
        assert caught.value.message_dict == {"to": [messages.NO_SUCH_PERSON]}

    def test_variables_eight_levels_deep_are_taken(self, setup):
        deep: dict = {"v": 1}
        for _ in range(messages.DATA_MAX_DEPTH - 1):
            deep = {"x": deep}
        assert send(setup, data=deep)[1] is True

    def test_a_key_version_its_idempotency_key_uses_cannot_be_retired(self, setup):
        from enclave.keys.references import reference_counts

        message, _ = send(setup)
        assert reference_counts("tokens", message.mac_version)[
            "messaging.TransactionalMessage.key_mac"] == 1

@pytest.mark.django_db(transaction=True)
class TestConcurrentRetries:
    def test_two_requests_with_one_key_at_once_queue_one_message(self, world, local_dns):
        if connection.vendor != "postgresql":
            pytest.skip("SQLite has one writer: requests cannot overlap")
        setup = Setup(world, local_dns)
        barrier, results = threading.Barrier(2), []

        def request():
            from django.db import connections

            try:
                barrier.wait()
                results.append(send(setup, data={})[1])
            finally:
                connections.close_all()

        threads = [threading.Thread(target=request) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert (sorted(results), TransactionalMessage.objects.count()) == ([False, True], 1)


@pytest.mark.django_db
class TestSending:
    def test_the_message_is_personalised_signed_and_has_no_unsubscribe_headers(
            self, setup, sink, smtp):
        setup.person("ann@example.net", subscribed=None, first_name="Ann")
        message, _ = send(setup)
        assert transactional.run_once(smtp) == {"sent": 1}
        mail = received(sink)["ann@example.net"]
        assert (mail["Subject"], mail["List-Unsubscribe"], "DKIM-Signature" in mail) == (
            "Order A-17", None, True)
        assert "Hi Ann, order A-17 is on its way." in mail.get_body(("html",)).get_content()
        assert (row(message).state, row(message).data) == ("sent", None)

    def test_an_address_that_is_nobody_gets_it_and_is_forgotten_once_sent(
            self, setup, sink, smtp):
        message, _ = send(setup, email="zed@example.net")
        transactional.run_once(smtp)
        assert set(received(sink)) == {"zed@example.net"}
        assert (row(message).state, row(message).to_address, row(message).data) == (
            "sent", None, None)

    def test_no_topic_consent_is_needed(self, setup, sink, smtp):
        setup.person("ann@example.net", subscribed=False)
        send(setup)
        assert transactional.run_once(smtp) == {"sent": 1}

    def test_a_suppressed_address_is_skipped(self, setup, sink, smtp):
        do_suppress_address(setup.world.account, "zed@example.net", reason="bounce",
                            actor=setup.owner)
        message, _ = send(setup, email="zed@example.net")
        assert transactional.run_once(smtp) == {"skipped": 1}
        assert (row(message).detail, row(message).to_address, received(sink)) == (
            "suppressed", None, {})

    def test_a_hard_bounce_fails_it_and_suppresses_the_address(self, setup, sink, smtp):
        sink.handler.refuse["zed@example.net"] = "550 5.1.1 <zed@example.net> unknown"
        message, _ = send(setup, email="zed@example.net")
        assert transactional.run_once(smtp) == {"failed": 1}
        assert suppressed_among(setup.world.account.pk, ["zed@example.net"]) == {
            "zed@example.net"}
        assert row(message).to_address is None

    def test_a_soft_refusal_defers_and_the_retry_is_the_same_mail(self, setup, sink, smtp):
        sink.handler.refuse["zed@example.net"] = "451 4.7.1 <zed@example.net> later"
        message, _ = send(setup, email="zed@example.net")
        assert transactional.run_once(smtp) == {"deferred": 1}
        first_id = row(message).message_id
        assert row(message).to_address == "zed@example.net"  # kept for the retry
        del sink.handler.refuse["zed@example.net"]
        with clock.travel(pipeline.BACKOFF[0] + dt.timedelta(seconds=1)):
            assert transactional.run_once(smtp) == {"sent": 1}
        mail = received(sink)["zed@example.net"]
        assert mail["Message-ID"].startswith(f"<{first_id}@")

    def test_a_worker_whose_lease_was_taken_over_sends_nothing(self, setup, sink, smtp):
        send(setup, email="zed@example.net")
        slow = transactional.claim()
        with clock.travel(pipeline.LEASE + dt.timedelta(seconds=1)):
            assert transactional.run_once(smtp) == {"sent": 1}
        assert transactional.send_batch(slow, smtp) == {}
        assert len(sink.handler.received) == 1

    def test_a_person_erased_before_sending_gets_nothing_and_leaves_no_row(
            self, setup, sink, smtp, world):
        ann = setup.person("ann@example.net", subscribed=None)
        send(setup, person=ann.pk)
        do_erase_person(Person.objects.get(pk=ann.pk), actor=world.actor("owner"))
        assert (transactional.run_once(smtp), TransactionalMessage.objects.count()) == (
            {}, 0)

    def test_the_worker_job_sends_transactional_messages_before_broadcasts(self, setup):
        setup.person("ann@example.net")
        broadcast = setup.queue(setup.broadcast())
        send(setup, email="zed@example.net")
        assert tasks.send_outbox() == {"sent": 2}  # the embedded capture transport
        assert list(CapturedMessage.objects.order_by("pk").values_list(
            "broadcast_id", flat=True)) == [None, broadcast.pk]


@pytest.mark.django_db
class TestApi:
    def client(self, world, scopes=("messages:send",)) -> ApiClient:
        token, _ = make_key(world.account, world.members["owner"], scopes=list(scopes))
        return ApiClient(token)

    def body(self, setup, **to) -> str:
        return json.dumps({"template": setup.template.pk, "sender": setup.sender.pk,
                           "from_local": "orders", "to": to or {"email": "zed@example.net"},
                           "data": {"order": {"number": "A-17"}}})

    def test_a_send_is_accepted_and_its_retry_replayed(self, setup, world):
        client = self.client(world)
        first = client.post("/api/v1/messages", self.body(setup),
                            HTTP_IDEMPOTENCY_KEY="order-17")
        again = client.post("/api/v1/messages", self.body(setup),
                            HTTP_IDEMPOTENCY_KEY="order-17")
        assert (first.status_code, again.status_code) == (202, 202)
        assert (first.json()["id"], first.json()["state"]) == (again.json()["id"], "queued")
        assert (first.headers.get("Idempotent-Replayed"),
                again.headers["Idempotent-Replayed"]) == (None, "true")

    def test_a_send_without_an_idempotency_key_is_refused(self, setup, world):
        response = self.client(world).post("/api/v1/messages", self.body(setup))
        assert (response.status_code, response.json()["type"].rsplit("/", 1)[-1]) == (
            400, "idempotency-key-missing")
        assert not TransactionalMessage.objects.exists()

    def test_the_same_key_with_another_body_is_422(self, setup, world):
        client = self.client(world)
        client.post("/api/v1/messages", self.body(setup), HTTP_IDEMPOTENCY_KEY="k")
        response = client.post("/api/v1/messages", self.body(setup, email="bob@example.net"),
                               HTTP_IDEMPOTENCY_KEY="k")
        assert response.status_code == 422

    def test_the_state_is_read_back_by_id_and_never_another_accounts(self, setup, world,
                                                                    sink, smtp):
        client = self.client(world)
        sent = client.post("/api/v1/messages", self.body(setup),
                           HTTP_IDEMPOTENCY_KEY="k").json()
        transactional.run_once(smtp)
        mine = client.get(f"/api/v1/messages/{sent['id']}")
        other_token, _ = make_key(world.other, world.other_owner, scopes=["messages:send"])
        theirs = ApiClient(other_token).get(f"/api/v1/messages/{sent['id']}")
        assert (mine.status_code, mine.json()["state"], theirs.status_code) == (
            200, "sent", 404)

    def test_whose_address_it_is_is_told_only_to_a_key_that_reads_people(self, setup,
                                                                         world):
        ann = setup.person("ann@example.net", subscribed=None)
        body = self.body(setup, email="ann@example.net")
        sender_only = self.client(world).post("/api/v1/messages", body,
                                              HTTP_IDEMPOTENCY_KEY="k")
        reader = self.client(world, scopes=("messages:send", "people:read")).post(
            "/api/v1/messages", body, HTTP_IDEMPOTENCY_KEY="k")
        assert (sender_only.json()["person"], reader.json()["person"]) == (None, ann.pk)

    def test_a_key_that_cannot_ask_about_suppression_pays_a_look_up_per_send(
            self, setup, world, settings):
        settings.ENCLAVE_API_RATES = {**settings.ENCLAVE_API_RATES,
                                      "suppression.lookup": "2/h"}
        send_only = self.client(world)
        writer = self.client(world, scopes=("messages:send", "people:write"))
        statuses = [send_only.post("/api/v1/messages", self.body(setup),
                                   HTTP_IDEMPOTENCY_KEY=f"k-{n}").status_code
                    for n in range(3)]
        assert statuses == [202, 202, 429]
        assert writer.post("/api/v1/messages", self.body(setup),
                           HTTP_IDEMPOTENCY_KEY="k-3").status_code == 202
        assert TransactionalMessage.objects.count() == 3

    def test_an_unknown_recipient_key_and_both_recipients_are_refused(self, setup, world):
        client = self.client(world)
        for to in ({"phone": "+33 1"}, {"email": "a@example.net", "person": 3}):
            response = client.post("/api/v1/messages", self.body(setup, **to),
                                   HTTP_IDEMPOTENCY_KEY=json.dumps(to))
            assert response.status_code == 422, to
        assert not TransactionalMessage.objects.exists()

    def test_email_write_alone_does_not_send(self, setup, world):
        response = self.client(world, scopes=("email:write",)).post(
            "/api/v1/messages", self.body(setup), HTTP_IDEMPOTENCY_KEY="k")
        assert (response.status_code, response.json()["type"].rsplit("/", 1)[-1]) == (
            403, "insufficient-scope")
