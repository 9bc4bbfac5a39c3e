"""Outgoing account mail: queued after commit with ids and addresses only."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import TestCase

from enclave.core import mail
from tests.identity.helpers import job_queue

SEND = "enclave.identity.send_account_mail"


class TestEnqueue:
    def test_a_message_body_is_refused(self):
        with pytest.raises(TypeError, match="ids and addresses only"):
            mail.enqueue(SEND, kind="signup", email="a@example.com",
                         body={"text": "https://example.com/app/signup/secret"})


@pytest.mark.django_db
class TestQueuedAfterCommit:
    def test_job_is_queued_when_the_transaction_commits(self, tmp_path):
        with job_queue(tmp_path) as queue:
            with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
                mail.enqueue(SEND, kind="signup", email="a@example.com")
            jobs = queue.take()
        assert jobs == [(SEND, {"kind": "signup", "email": "a@example.com"})]

    def test_rolled_back_action_queues_nothing(self, tmp_path):
        def failing_action():
            with transaction.atomic():
                mail.enqueue(SEND, kind="signup", email="a@example.com")
                raise RuntimeError("the action failed")

        with job_queue(tmp_path) as queue:
            with TestCase.captureOnCommitCallbacks(execute=True), pytest.raises(RuntimeError):
                failing_action()
            jobs = queue.take()
        assert jobs == []
