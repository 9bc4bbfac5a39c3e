"""People list queries (people.queries): tag filter, custom fields searched, filtered and
sorted when visible to the member, the capped count."""

from __future__ import annotations

import re

import pytest

from enclave.people import actions, queries, visibility
from enclave.people.access import field_definitions
from enclave.people.models import Person
from tests.people.test_views import ids_on, total_on


def tag(world, person, names: str, actor=None) -> None:
    actions.do_update_person(person, {"tags": names}, actor=actor or world.actor("owner"))


def define(world, key: str, field_type: str, pd_class: str = "none", **kw):
    return actions.do_define_field(world.account, key, key.title(), field_type,
                                   pd_class=pd_class, actor=world.actor("owner"), **kw)


def same_page(a: str, b: str) -> bool:
    """Equal apart from per-response nonces and CSRF tokens."""
    noise = re.compile(r'(nonce|value)="[A-Za-z0-9_\-]{20,}"')
    return noise.sub("", a) == noise.sub("", b)


def next_link(response) -> str:
    link = re.search(r'<a href="(\?[^"]+)" rel="next">', response.text)
    return "/app/people/" + link[1].replace("&amp;", "&") if link else ""


@pytest.mark.django_db
class TestTagFilter:
    def test_tag_filter_lists_only_tagged_people(self, world):
        tagged = Person.objects.create(account=world.account, email="t@example.com")
        tag(world, tagged, "vip, spring")
        response = world.client("analyst").get("/app/people/", {"tag": "vip"})
        assert (ids_on(response), total_on(response)) == ([tagged.pk], 1)

    def test_another_tenants_tag_name_matches_nothing(self, world):
        tag(world, world.other_person, "secret-campaign", world.other_actor())
        response = world.client("owner").get("/app/people/", {"tag": "secret-campaign"})
        unknown = world.client("owner").get("/app/people/", {"tag": "no-such-tag"})
        assert (response.status_code, ids_on(response), total_on(response)) == (200, [], 0)
        assert same_page(response.text.replace("secret-campaign", "X"),
                         unknown.text.replace("no-such-tag", "X"))

    def test_tag_filter_applies_to_the_export(self, world):
        tagged = Person.objects.create(account=world.account, email="t@example.com")
        tag(world, tagged, "vip")
        csv = world.client("owner").get("/app/people/export.csv", {"tag": "vip"})
        body = b"".join(csv.streaming_content).decode()
        assert "t@example.com" in body
        assert world.person.email not in body


@pytest.mark.django_db
class TestCustomFieldQueries:
    def test_visible_custom_text_field_is_searched(self, world):
        define(world, "plan", "text")
        actions.do_update_person(world.person, {"custom.plan": "Platinum Zebra"},
                                 actor=world.actor("owner"))
        response = world.client("analyst").get("/app/people/", {"q": "platinum z"})
        assert ids_on(response) == [world.person.pk]

    def test_search_matches_the_start_of_a_field(self, world):
        # "Globex Unique Corp" starts with "Globex": found by its start, not by a middle.
        start = world.client("analyst").get("/app/people/", {"q": "globex uni"})
        middle = world.client("analyst").get("/app/people/", {"q": "unique corp"})
        assert (ids_on(start), total_on(start)) == ([world.person.pk], 1)
        assert (ids_on(middle), total_on(middle)) == ([], 0)

    def test_masked_custom_field_is_not_searched(self, world):
        define(world, "nickname", "text", pd_class="personal")
        actions.do_update_person(world.person, {"custom.nickname": "Zorro"},
                                 actor=world.actor("owner"))
        assert ids_on(world.client("analyst").get("/app/people/", {"q": "Zorro"})) == []
        assert ids_on(world.client("owner").get("/app/people/", {"q": "Zorro"})) == [
            world.person.pk]

    def test_filter_by_visible_custom_field(self, world):
        define(world, "score", "number")
        other = Person.objects.create(account=world.account, email="o@example.com")
        actions.do_update_person(world.person, {"custom.score": "7"},
                                 actor=world.actor("owner"))
        actions.do_update_person(other, {"custom.score": "8"}, actor=world.actor("owner"))
        response = world.client("analyst").get("/app/people/", {"custom.score": "7"})
        assert ids_on(response) == [world.person.pk]

    @pytest.mark.parametrize("purpose", ["filter", "sort"])
    def test_masked_custom_field_is_refused_for_filter_and_sort(self, world, purpose):
        define(world, "nickname", "text", pd_class="personal")
        params = ({"custom.nickname": "Zorro"} if purpose == "filter"
                  else {"sort": "custom.nickname"})
        response = world.client("analyst").get("/app/people/", params)
        assert response.status_code == 400
        assert "masked for your role" in response.text

    def test_masked_custom_field_raises_field_not_queryable(self, world):
        definition = define(world, "nickname", "text", pd_class="personal")
        ctx = world.actor("analyst")
        with pytest.raises(visibility.FieldNotQueryable, match="masked"):
            queries.query_people(ctx, {"sort": "custom.nickname"}, [definition])

    def test_hidden_custom_field_is_refused(self, world):
        from enclave.accounts.actions import do_change_role, do_save_custom_role

        define(world, "plan", "text")
        role = do_save_custom_role(world.account, "Team only", ["team.read"],
                                   actor=world.actor("owner"))
        do_change_role(world.membership("viewer"), role, actor=world.actor("owner"))
        with pytest.raises(visibility.FieldNotQueryable, match="hidden"):
            visibility.require_visible(world.actor("viewer").perms, "custom.plan", "sort",
                                       field_definitions(world.account.pk))

    def test_encrypted_custom_field_is_refused_even_to_the_owner(self, world):
        define(world, "health", "text", pd_class="sensitive", encrypt_at_rest=True)
        response = world.client("owner").get("/app/people/", {"custom.health": "x"})
        assert response.status_code == 400
        assert "encrypted at rest" in response.text

    def test_value_of_the_wrong_type_is_a_clear_400(self, world):
        define(world, "score", "number")
        response = world.client("owner").get("/app/people/", {"custom.score": "lots"})
        assert response.status_code == 400
        assert "Enter a number." in response.text

    @pytest.mark.parametrize("sort", ["custom.score", "-custom.score"])
    def test_sort_by_number_field_is_numeric_and_pages_cover_everyone(self, world, sort):
        define(world, "score", "number")
        Person.objects.bulk_create(
            Person(account=world.account, email=f"p{i}@example.com",
                   custom={"score": (i * 7) % 60} if i % 5 else {})
            for i in range(60))
        client, seen, scores, url = world.client("analyst"), [], [], f"/app/people/?sort={sort}"
        while url:
            response = client.get(url)
            assert response.status_code == 200
            seen += ids_on(response)
            url = next_link(response)
        by_id = {p.pk: p.custom.get("score", float("-inf"))
                 for p in Person.objects.filter(account=world.account)}
        scores = [by_id[pk] for pk in seen]
        assert sorted(seen) == sorted(by_id)
        assert scores == sorted(scores, reverse=sort.startswith("-"))

    def test_sort_by_text_field_pages_cover_everyone(self, world):
        define(world, "plan", "select", options=["bronze", "gold", "silver"])
        plans = ["bronze", "gold", "silver", None]
        Person.objects.bulk_create(
            Person(account=world.account, email=f"p{i}@example.com",
                   custom={"plan": plans[i % 4]} if plans[i % 4] else {})
            for i in range(70))
        client, seen, url = world.client("analyst"), [], "/app/people/?sort=custom.plan"
        while url:
            response = client.get(url)
            seen += ids_on(response)
            url = next_link(response)
        by_id = {p.pk: p.custom.get("plan") or "" for p in
                 Person.objects.filter(account=world.account)}
        assert sorted(seen) == sorted(by_id)
        assert [by_id[pk] for pk in seen] == sorted(by_id[pk] for pk in seen)


@pytest.mark.django_db
class TestCountCap:
    def test_total_above_the_cap_says_more_than(self, world, monkeypatch):
        monkeypatch.setattr(queries, "COUNT_CAP", 3)
        monkeypatch.setattr("enclave.people.views.COUNT_CAP", 3)
        Person.objects.bulk_create(Person(account=world.account, email=f"p{i}@example.com")
                                   for i in range(5))
        ctx = world.actor("owner")
        _, _, total = queries.query_people(ctx, {}, [], count_cap=3)
        response = world.client("owner").get("/app/people/")
        assert total == 4
        assert "More than <span id=\"people-total\">3</span>" in response.text
