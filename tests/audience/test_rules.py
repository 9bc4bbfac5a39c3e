"""Segment rules: the typed tree, what the account and the author allow, and what the
compiled query matches (on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from enclave.access.permissions import ROLE_PERMISSIONS
from enclave.audience import membership, rules
from enclave.audience.models import DYNAMIC, STATIC, Segment, SegmentMember
from tests.audience.conftest import NOW

OWNER = ROLE_PERMISSIONS["owner"]


def match(audience, tree, perms=OWNER) -> set[str]:
    rule = rules.parse(tree)
    ctx = membership.context(audience.world.account.pk, perms, now=NOW)
    rules.check(rule, ctx)
    return audience.names(membership.people_in(rule, ctx))


def field(name, op, value=None) -> dict:
    return {"type": "field", "field": name, "op": op, "value": value}


def group(match_, *children) -> dict:
    return {"type": "group", "match": match_, "rules": list(children)}


def refused(audience, tree, perms=OWNER) -> str:
    with pytest.raises(rules.RuleError) as caught:
        match(audience, tree, perms)
    return str(caught.value)


@pytest.mark.django_db
class TestBuiltInFields:
    def test_equals_ignores_case(self, audience):
        assert match(audience, field("email", "equals", "ANN@shop.example")) == {"ann"}

    def test_contains_and_starts_with(self, audience):
        assert match(audience, field("email", "contains", "@shop.")) == {"ann", "bob", "dan"}
        assert match(audience, field("first_name", "starts_with", "ca")) == {"cat"}

    def test_not_contains_includes_people_without_the_text(self, audience):
        assert match(audience, field("email", "not_contains", "shop")) == {"cat", "world"}

    def test_in_matches_any_listed_value(self, audience):
        assert match(audience, field("country", "in", ["fr", "GB"])) == {
            "ann", "bob", "cat", "world"}

    def test_empty_and_not_empty(self, audience):
        assert match(audience, field("first_name", "empty")) == {"dan"}
        assert "dan" not in match(audience, field("first_name", "not_empty"))

    def test_created_within_the_last_days(self, audience):
        assert match(audience, field("created_at", "within_last_days", 7)) == {"ann", "dan"}

    def test_created_more_than_days_ago(self, audience):
        assert match(audience, field("created_at", "more_than_days_ago", 30)) == {"bob", "cat"}

    def test_created_before_a_date(self, audience):
        assert match(audience, field("created_at", "before", "2026-05-10")) == {"bob", "cat"}


@pytest.mark.django_db
class TestCustomFields:
    def test_number_comparisons(self, audience):
        assert match(audience, field("custom.score", "gte", 7.5)) == {"ann", "cat"}
        assert match(audience, field("custom.score", "lt", 5)) == {"bob"}

    def test_number_not_equals_leaves_out_people_without_a_value(self, audience):
        assert match(audience, field("custom.score", "not_equals", 3)) == {"ann", "cat"}

    def test_select_in(self, audience):
        assert match(audience, field("custom.plan", "in", ["pro", "free"])) == {"ann", "bob"}

    def test_text_empty_counts_a_missing_key(self, audience):
        assert match(audience, field("custom.city", "empty")) == {"bob", "dan", "world"}

    def test_date_after(self, audience):
        assert match(audience, field("custom.birthday", "after", "1986-01-01")) == {"ann"}

    def test_birthday_within_days_matches_the_anniversary(self, audience):
        assert match(audience, field("custom.birthday", "anniversary_within_days", 7)) == {
            "ann"}
        assert match(audience, field("custom.birthday", "anniversary_within_days", 4)) == set()


@pytest.mark.django_db
class TestTagsEventsAndGroups:
    def test_has_and_has_not_a_tag(self, audience):
        assert match(audience, {"type": "tag", "tag": "vip"}) == {"bob", "dan"}
        assert match(audience, {"type": "tag", "tag": "vip", "has": False}) == {
            "ann", "cat", "world"}

    def test_event_at_least_n_times_within_a_window(self, audience):
        tree = {"type": "event", "name": "Viewed page", "min": 3, "within_days": 14}
        assert match(audience, tree) == {"ann"}

    def test_whole_numbers_sent_as_floats_count_as_integers(self, audience):
        tree = {"type": "event", "name": "Viewed page", "min": 3.0, "within_days": 14.0}
        assert match(audience, tree) == {"ann"}

    def test_at_least_zero_times_matches_everyone(self, audience):
        assert match(audience, {"type": "event", "name": "Viewed page", "min": 0}) == {
            "ann", "bob", "cat", "dan", "world"}

    def test_event_between_min_and_max_times_counts_both_bounds_in(self, audience):
        tree = {"type": "event", "name": "Viewed page", "min": 1, "max": 2, "within_days": 14}
        assert match(audience, tree) == {"bob", "cat"}
        assert match(audience, {"type": "event", "name": "Viewed page", "min": 3,
                                "max": 3}) == {"ann", "bob"}

    def test_event_at_least_n_times_negated_includes_people_who_never_did_it(self, audience):
        tree = {"type": "not", "rule": {"type": "event", "name": "Viewed page", "min": 2}}
        assert match(audience, tree) == {"cat", "dan", "world"}

    def test_min_above_max_matches_nobody(self, audience):
        assert match(audience, {"type": "event", "name": "Viewed page", "min": 3,
                                "max": 1}) == set()

    def test_after_the_last_representable_day_matches_nobody(self, audience):
        assert match(audience, field("created_at", "after", "9999-12-31")) == set()

    def test_event_at_least_once_ever(self, audience):
        assert match(audience, {"type": "event", "name": "Viewed page"}) == {
            "ann", "bob", "cat"}

    def test_event_at_most_n_times_includes_people_who_never_did_it(self, audience):
        tree = {"type": "event", "name": "Viewed page", "max": 1, "within_days": 14}
        assert match(audience, tree) == {"bob", "cat", "dan", "world"}

    def test_did_not_do_since_a_date(self, audience):
        tree = {"type": "event", "name": "Viewed page", "max": 0, "since": "2026-06-12"}
        assert match(audience, tree) == {"cat", "dan", "world"}

    def test_event_with_a_property_condition(self, audience):
        tree = {"type": "event", "name": "Viewed page",
                "where": {"property": "page", "op": "equals", "value": "/blog"}}
        assert match(audience, tree) == {"cat"}
        numeric = {"type": "event", "name": "Viewed page",
                   "where": {"property": "n", "op": "gt", "value": 4}}
        assert match(audience, numeric) == {"ann"}

    def test_the_issue_example_combines_tag_event_and_not(self, audience):
        tree = group("all", {"type": "tag", "tag": "trial"},
                     {"type": "event", "name": "Viewed page", "min": 3, "within_days": 14},
                     {"type": "not", "rule": field("country", "equals", "FR")})
        assert match(audience, tree) == {"ann"}

    def test_any_group(self, audience):
        tree = group("any", field("country", "equals", "FR"), {"type": "tag", "tag": "vip"})
        assert match(audience, tree) == {"bob", "dan"}

    def test_archived_people_are_never_members(self, audience):
        from enclave.core import clock

        audience.people["dan"].archived_at = clock.now()
        audience.people["dan"].save()
        assert match(audience, {"type": "tag", "tag": "vip"}) == {"bob"}


@pytest.mark.django_db
class TestSegmentConditions:
    def test_in_a_static_list(self, audience):
        vip_list = Segment.objects.create(account=audience.world.account, name="L",
                                          kind=STATIC)
        SegmentMember.objects.create(segment=vip_list, person=audience.people["cat"])
        assert match(audience, {"type": "segment", "segment": vip_list.pk}) == {"cat"}

    def test_in_a_dynamic_segment_uses_its_rule_live(self, audience):
        inner = Segment.objects.create(account=audience.world.account, name="D",
                                       kind=DYNAMIC, rules={"type": "tag", "tag": "vip"})
        tree = group("all", {"type": "segment", "segment": inner.pk},
                     field("country", "equals", "FR"))
        assert match(audience, tree) == {"bob"}

    def test_another_accounts_segment_does_not_exist(self, audience):
        theirs = Segment.objects.create(account=audience.world.other, name="X", kind=STATIC)
        assert "does not exist" in refused(audience, {"type": "segment",
                                                      "segment": theirs.pk})

    def test_references_that_multiply_past_the_limit_are_refused(self, audience):
        account = audience.world.account
        leaf = Segment.objects.create(account=account, name="Leaf", kind=DYNAMIC,
                                      rules={"type": "tag", "tag": "vip"})
        wide = {"type": "group", "match": "any",
                "rules": [{"type": "segment", "segment": leaf.pk}] * 10}
        middle = Segment.objects.create(account=account, name="Middle", kind=DYNAMIC,
                                        rules=wide)
        tree = {"type": "group", "match": "any",
                "rules": [{"type": "segment", "segment": middle.pk}] * 10}
        with pytest.raises(rules.TooLarge):
            match(audience, tree)
        assert rules.expanded_size(rules.parse(wide), membership.context(
            account.pk, OWNER)) == 20

    def test_a_cycle_is_refused(self, audience):
        first = Segment.objects.create(account=audience.world.account, name="A",
                                       kind=DYNAMIC, rules={"type": "tag", "tag": "vip"})
        second = Segment.objects.create(account=audience.world.account, name="B",
                                        kind=DYNAMIC,
                                        rules={"type": "segment", "segment": first.pk})
        rule = rules.parse({"type": "segment", "segment": second.pk})
        ctx = membership.context(audience.world.account.pk, OWNER, now=NOW)
        with pytest.raises(rules.RuleError, match="refer to itself"):
            rules.check(rule, ctx, segment_id=first.pk)


@pytest.mark.django_db
class TestRefused:
    @pytest.mark.parametrize(("tree", "says"), [
        (field("nickname", "equals", "x"), "Unknown field"),
        (field("custom.nope", "equals", "x"), "Unknown field"),
        (field("custom.score", "contains", "1"), "not an operator for a number"),
        (field("custom.score", "gt", "7"), "send a number"),
        (field("email", "equals", 7), "send a text"),
        (field("custom.plan", "equals", "gold"), "not one of the field's options"),
        (field("created_at", "before", "2026-13-01"), "YYYY-MM-DD"),
        (field("email", "empty", "x"), "send no value"),
        (field("email", "in", []), "list of 1"),
        (field("custom.secret_note", "equals", "x"), "encrypted at rest"),
        (field("custom.score", "gt", 10**16), "numbers are between"),
        (field("email", "equals", "x" * 201), "at most 200 characters"),
        ({"type": "event", "name": "e", "where": {"property": 'a"b', "op": "exists"}},
         "property"),
        ({"type": "event", "name": "e", "where": {"property": "-1", "op": "exists"}},
         "cannot be a number"),
        ({"type": "event", "name": "e", "where": {"property": " 7", "op": "exists"}},
         "cannot be a number"),
        (field("custom.score", "gt", float("nan")), "finite"),
        (field("custom.score", "gt", float("inf")), "finite"),
        ({"type": "segment", "segment": 999999}, "does not exist"),
        ({"type": "group", "match": "all", "rules": []}, "length >= 1"),
        ({"type": "tag", "tag": "vip", "sql": "1=1"}, "unknown field"),
        ({"type": "raw", "sql": "DROP TABLE x"}, "Invalid value 'raw'"),
    ])
    def test_invalid_tree_is_refused_with_a_reason(self, audience, tree, says):
        assert says.lower() in refused(audience, tree).lower()

    def test_groups_nested_too_deep_are_refused(self, audience):
        tree = {"type": "tag", "tag": "vip"}
        for _ in range(rules.MAX_DEPTH + 1):
            tree = group("all", tree)
        assert "nest at most" in refused(audience, tree)

    def test_the_deepest_allowed_nesting_is_accepted(self, audience):
        tree = {"type": "not", "rule": {"type": "tag", "tag": "vip"}}
        for _ in range(rules.MAX_DEPTH):
            tree = group("all", tree)
        assert match(audience, tree) == {"ann", "cat", "world"}

    @pytest.mark.parametrize("level", range(rules.MAX_DEPTH))
    def test_a_group_holding_more_than_its_level_allows_is_refused(self, audience, level):
        leaves = [{"type": "tag", "tag": f"t{i}"} for i in range(rules.GROUP_SIZES[level] + 1)]
        tree = group("any", *leaves)
        for _ in range(level):
            tree = group("all", tree)
        assert f"holds at most {rules.GROUP_SIZES[level]} rules" in refused(audience, tree)

    @pytest.mark.parametrize("inner", [
        {"type": "not", "rule": {"type": "tag", "tag": "x"}},
        {"type": "group", "match": "all", "rules": [{"type": "tag", "tag": "x"}]}])
    def test_not_wraps_only_a_condition(self, audience, inner):
        assert "A not wraps one condition" in refused(audience, {"type": "not",
                                                                 "rule": inner})


@pytest.mark.django_db
class TestHostileKeys:
    """Keys are data: a custom field or event property named like a lookup path, or with
    quotes and brackets, is matched as that key — never a crash, never another key."""

    @pytest.mark.parametrize("key", ["a__gt", "a'b", "a.b", "$.x", "a]b[", "a\\b",
                                     " ", "a b", "ü"])
    def test_an_event_property_key_is_taken_literally(self, audience, key):
        import datetime as dt

        from enclave.events.models import Event

        Event.objects.create(account=audience.world.account, person=audience.people["dan"],
                             type="track", name="Odd", properties={key: "v", "a": {"gt": "v"}},
                             occurred_at=NOW - dt.timedelta(days=1))
        for op, value in (("equals", "v"), ("contains", "V"), ("exists", None)):
            tree = {"type": "event", "name": "Odd",
                    "where": {"property": key, "op": op, "value": value}}
            assert match(audience, tree) == {"dan"}, op
        other = {"type": "event", "name": "Odd",
                 "where": {"property": key + "x", "op": "equals", "value": "v"}}
        assert match(audience, other) == set()

    def test_a_custom_field_key_with_double_underscores_is_one_key(self, audience):
        from enclave.people.models import FieldDefinition, Person

        FieldDefinition.objects.create(account=audience.world.account, key="a__gt",
                                       label="odd", type="text")
        Person.objects.filter(pk=audience.people["cat"].pk).update(
            custom={"a__gt": "yes", "a": {"gt": "no"}})
        assert match(audience, field("custom.a__gt", "equals", "yes")) == {"cat"}
        assert match(audience, field("custom.a__gt", "empty")) == {
            "ann", "bob", "dan", "world"}


@pytest.mark.django_db
class TestSubscriptionConditions:
    def _news(self, audience):
        from enclave.audience.subscriptions import do_change_subscription, do_create_topic

        owner = audience.world.actor("owner")
        news = do_create_topic(audience.world.account, "news", "News", consent_text="x",
                               actor=owner)
        do_change_subscription(audience.people["ann"], news, True, method="app",
                               actor=owner)  # double opt-in: pending
        return news

    def test_status_pending_and_never(self, audience):
        self._news(audience)
        assert match(audience, {"type": "subscription", "topic": "news",
                                "status": "pending"}) == {"ann"}
        assert match(audience, {"type": "subscription", "topic": "news",
                                "status": "never"}) == {"bob", "cat", "dan", "world"}
        assert match(audience, {"type": "subscription", "topic": "news"}) == set()

    def test_an_unknown_topic_is_missing(self, audience):
        with pytest.raises(rules.MissingTopic):
            match(audience, {"type": "subscription", "topic": "nope"})

    def test_a_role_without_people_read_cannot_use_subscriptions(self, audience):
        self._news(audience)
        assert "without people.read" in refused(
            audience, {"type": "subscription", "topic": "news"}, ROLE_PERMISSIONS["viewer"])
