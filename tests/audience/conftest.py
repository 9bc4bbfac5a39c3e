"""Fixtures for audience tests: the people World plus a small, known audience."""

from __future__ import annotations

import datetime as dt

import pytest

from enclave.core import clock
from enclave.events.models import Event
from enclave.people.models import FieldDefinition, Person, PersonTag, Tag
from tests.people.world import World

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)


class Audience:
    """World's account with five people whose fields, tags and events are known."""

    def __init__(self, world: World) -> None:
        self.world = world
        account = world.account
        for key, kind, extra in (("score", "number", {}), ("birthday", "date", {}),
                                 ("plan", "select", {"options": ["free", "pro"]}),
                                 ("city", "text", {}),
                                 ("secret_note", "text", {"encrypt_at_rest": True}),
                                 ("salary", "number", {"pd_class": "sensitive"})):
            FieldDefinition.objects.create(account=account, key=key, label=key, type=kind,
                                           **extra)
        self.people = {
            "ann": self._person("ann@shop.example", "Ann", "GB",
                                {"score": 10, "birthday": "1990-06-20", "plan": "pro",
                                 "city": "London"}, ["trial"], created_days_ago=3),
            "bob": self._person("bob@shop.example", "Bob", "FR",
                                {"score": 3, "birthday": "1985-12-01", "plan": "free"},
                                ["trial", "vip"], created_days_ago=40),
            "cat": self._person("cat@other.example", "Cat", "GB",
                                {"score": 7.5, "city": "Leeds"}, [], created_days_ago=400),
            "dan": self._person("dan@shop.example", "", "", {}, ["vip"], created_days_ago=1),
        }
        for name, days_ago, props in (("ann", 1, {"page": "/pricing"}),
                                      ("ann", 2, {"page": "/pricing"}),
                                      ("ann", 3, {"page": "/pricing", "n": 5}),
                                      ("bob", 1, {"page": "/pricing"}),
                                      ("bob", 30, {"page": "/pricing"}),
                                      ("bob", 31, {"page": "/pricing"}),
                                      ("cat", 5, {"page": "/blog"})):
            Event.objects.create(account=account, person=self.people[name], type="track",
                                 name="Viewed page", properties=props,
                                 occurred_at=NOW - dt.timedelta(days=days_ago))

    def _person(self, email, first, country, custom, tags, *, created_days_ago):
        created = NOW - dt.timedelta(days=created_days_ago)
        person = Person.objects.create(account=self.world.account, email=email,
                                       first_name=first, country=country, custom=custom,
                                       created_at=created, updated_at=created)
        for tag in tags:
            tag_row, _ = Tag.objects.get_or_create(account=self.world.account, name=tag)
            PersonTag.objects.create(person=person, tag=tag_row)
        return person

    def names(self, people) -> set[str]:
        by_pk = {p.pk: name for name, p in self.people.items()}
        by_pk[self.world.person.pk] = "world"
        return {by_pk[p.pk] for p in people}


@pytest.fixture
def world(db) -> World:
    return World()


@pytest.fixture
def audience(world) -> Audience:
    with clock.frozen(NOW):
        yield Audience(world)
