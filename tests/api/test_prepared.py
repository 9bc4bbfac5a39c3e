"""enclave.core.prepared: ORM queries compiled once, re-run with new values (and, on
PostgreSQL, server-side prepared statements sent in one pipeline)."""

from __future__ import annotations

import pytest
from django.db import connection

from enclave.api import people as api_people
from enclave.core.prepared import Prepared, run_together
from enclave.people.models import Person, PersonTag, Tag

pytestmark = pytest.mark.django_db

_EMAILS = Prepared(
    "test_person_emails",
    lambda account: Person.objects.filter(account_id=account).order_by("pk")
    .values_list("email"),
    account=-555_001)


def test_rows_match_the_orm_for_each_new_value(world):
    for account in (world.account, world.other):
        expected = list(Person.objects.filter(account=account).order_by("pk")
                        .values_list("email"))
        assert [tuple(r) for r in _EMAILS.rows(account=account.pk)] == expected


def test_rows_are_read_afresh_on_every_call(world):
    before = _EMAILS.rows(account=world.account.pk)
    Person.objects.create(account=world.account, email="new@acme.example")
    assert len(_EMAILS.rows(account=world.account.pk)) == len(before) + 1


@pytest.mark.django_db(transaction=True)
def test_rows_still_come_back_after_a_reconnect(world):
    _EMAILS.rows(account=world.account.pk)
    connection.close()  # a new database session has none of the old statements
    assert [tuple(r) for r in _EMAILS.rows(account=world.account.pk)] == [
        (world.person.email,)]


def test_run_together_returns_each_querys_rows_in_order(world):
    tag = Tag.objects.create(account=world.account, name="vip")
    PersonTag.objects.create(person=world.person, tag=tag)
    emails, tags = run_together(
        "default", (_EMAILS, {"account": world.other.pk}),
        (api_people._TAGS, {"account": world.account.pk, "person": world.person.pk}))
    assert [e for (e,) in emails] == [world.other_person.email]
    assert [t for (t,) in tags] == ["vip"]


def test_person_query_never_returns_another_accounts_person(world):
    rows = api_people._PERSON.rows(account=world.account.pk, person=world.other_person.pk)
    assert rows == []


def test_a_placeholder_missing_from_the_query_is_refused(world):
    broken = Prepared("test_broken", lambda account: Person.objects.values_list("email"),
                      account=-555_002)
    with pytest.raises(RuntimeError, match="placeholder"):
        broken.rows(account=1)
