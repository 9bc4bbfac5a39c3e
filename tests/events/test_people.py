"""Identify and track events upsert people of the key's account, with people's own rules."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from enclave.events.models import Event
from enclave.people import actions as people_actions
from enclave.people.models import Person, sealed_values
from tests.apikeys.factories import make_key
from tests.events.conftest import ingest_client
from tests.people.world import PERSON, new_member
from tests.principals import acting

URL = "/api/v1/events"


def identify(**kw) -> dict:
    return {"type": "identify", **kw}


def tags_of(person: Person) -> list[str]:
    return sorted(person.person_tags.values_list("tag__name", flat=True))


@pytest.mark.django_db
class TestIdentify:
    def test_identify_creates_a_person_with_fields_and_tags(self, ingest, world):
        response = ingest.post(URL, identify(email="Ada@Example.com", external_id="u-1",
                                             fields={"first_name": "Ada", "country": "gb"},
                                             tags=["beta", "vip"]))
        assert response.status_code == 202
        person = Person.objects.get(account=world.account, external_id="u-1")
        assert (person.email, person.first_name, person.country) == (
            "ada@example.com", "Ada", "GB")
        assert tags_of(person) == ["beta", "vip"]

    def test_identify_sets_a_time_zone(self, ingest, world):
        response = ingest.post(URL, identify(external_id="u-2",
                                             fields={"time_zone": "Europe/Berlin"}))
        assert response.status_code == 202
        assert Person.objects.get(account=world.account, external_id="u-2").time_zone == (
            "Europe/Berlin")

    def test_identify_updates_the_person_with_that_external_id(self, ingest, world):
        ingest.post(URL, identify(external_id=PERSON["external_id"],
                                  fields={"company": "Initech"}))
        world.person.refresh_from_db()
        assert world.person.company == "Initech"
        assert world.person.first_name == PERSON["first_name"]
        assert Person.objects.filter(account=world.account).count() == 1

    def test_identify_finds_the_person_by_email_when_no_external_id(self, ingest, world):
        ingest.post(URL, identify(email=PERSON["email"], fields={"last_name": "Q"}))
        world.person.refresh_from_db()
        assert world.person.last_name == "Q"

    def test_identify_adds_tags_without_removing_existing_ones(self, ingest, world):
        ingest.post(URL, identify(email=PERSON["email"], tags=["a"]))
        ingest.post(URL, identify(email=PERSON["email"], tags=["b"]))
        assert tags_of(world.person) == ["a", "b"]

    def test_invalid_field_value_leaves_the_person_unchanged(self, ingest, world):
        response = ingest.post(URL, {"batch": [
            identify(email=PERSON["email"], fields={"first_name": "Changed"}),
            identify(email=PERSON["email"], fields={"phone": "call me maybe"})]})
        assert response.status_code == 422
        assert list(response.json()["errors"]) == ["batch.1.fields.phone"]
        world.person.refresh_from_db()
        assert world.person.first_name == PERSON["first_name"]

    def test_custom_field_value_must_match_its_type(self, ingest, world):
        people_actions.do_define_field(world.account, "score", "Score", "number",
                                       actor=world.actor("owner"))
        bad = ingest.post(URL, identify(email=PERSON["email"], fields={"custom.score": "lots"}))
        good = ingest.post(URL, identify(email=PERSON["email"], fields={"custom.score": 7}))
        assert bad.status_code == 422
        assert bad.json()["errors"] == {"fields.custom.score": [
            "Send a JSON number between -1000000000000000 and 1000000000000000, or null."]}
        assert good.status_code == 202
        world.person.refresh_from_db()
        assert world.person.custom["score"] == 7

    @pytest.mark.parametrize(("key", "value"), [("custom.score", "7"), ("first_name", 5),
                                                ("consent", True), ("country", 44)])
    def test_field_value_of_another_json_type_is_refused_not_coerced(self, ingest, world,
                                                                     key, value):
        people_actions.do_define_field(world.account, "score", "Score", "number",
                                       actor=world.actor("owner"))
        response = ingest.post(URL, identify(email=PERSON["email"], fields={key: value}))
        assert response.status_code == 422
        assert list(response.json()["errors"]) == [f"fields.{key}"]
        world.person.refresh_from_db()
        assert world.person.custom.get("score") is None
        assert world.person.first_name == PERSON["first_name"]

    def test_text_field_longer_than_its_limit_as_sent_is_refused(self, ingest, world):
        response = ingest.post(URL, identify(email=PERSON["email"],
                                             fields={"first_name": "A" * 100 + " "}))
        assert response.status_code == 422
        assert response.json()["errors"] == {"fields.first_name": ["At most 100 characters."]}

    def test_encrypted_custom_field_is_sealed_not_searchable(self, ingest, world):
        people_actions.do_define_field(world.account, "notes", "Notes", "text",
                                       actor=world.actor("owner"), encrypt_at_rest=True)
        ingest.post(URL, identify(email=PERSON["email"], fields={"custom.notes": "secret"}))
        ingest.post(URL, identify(email="new@example.com", fields={"custom.notes": "hush"}))
        old = Person.objects.get(pk=world.person.pk)
        new = Person.objects.get(account=world.account, email="new@example.com")
        assert sealed_values(old) == {"notes": "secret"}
        assert sealed_values(new) == {"notes": "hush"}
        assert "notes" not in old.custom
        assert "notes" not in new.custom

    def test_unknown_field_is_422(self, ingest):
        response = ingest.post(URL, identify(email="a@example.com", fields={"shoe": "9"}))
        assert list(response.json()["errors"]) == ["fields.shoe"]

    def test_email_of_another_person_is_409_and_stores_nothing(self, world):
        Person.objects.create(account=world.account, email="taken@example.com")
        ingest = ingest_client(world, scopes=["events:write", "people:read"])
        response = ingest.post(URL, {"batch": [
            {"type": "track", "event": "x"},
            identify(external_id=PERSON["external_id"], email="taken@example.com")]})
        assert response.status_code == 409
        assert response.json()["errors"] == {
            "batch.1.email": ["Another person has this email address."]}
        assert not Event.objects.exists()
        world.person.refresh_from_db()
        assert world.person.email == PERSON["email"]

    def test_conflict_beside_an_invalid_event_is_422_for_the_invalid_one(self, world):
        Person.objects.create(account=world.account, email="taken@example.com")
        ingest = ingest_client(world, scopes=["events:write", "people:read"])
        response = ingest.post(URL, {"batch": [
            identify(external_id=PERSON["external_id"], email="taken@example.com"),
            identify(external_id="other", fields={"country": "Nowhere"})]})
        assert response.status_code == 422
        assert list(response.json()["errors"]) == ["batch.1.fields.country"]

    def test_write_only_key_cannot_learn_that_an_email_is_taken(self, ingest, world):
        Person.objects.create(account=world.account, email="taken@example.com")
        response = ingest.post(URL, identify(external_id=PERSON["external_id"],
                                             email="taken@example.com",
                                             fields={"company": "Probe Inc"}))
        assert response.status_code == 202
        world.person.refresh_from_db()
        assert (world.person.email, world.person.company) == (PERSON["email"], "Probe Inc")

    def test_later_identify_in_a_batch_sees_the_earlier_one(self, ingest, world):
        ingest.post(URL, {"batch": [
            identify(email="b@example.com", fields={"first_name": "B"}),
            identify(email="b@example.com", external_id="ext-b", fields={"last_name": "C"})]})
        person = Person.objects.get(account=world.account, email="b@example.com")
        assert (person.first_name, person.last_name, person.external_id) == ("B", "C", "ext-b")

    def test_another_accounts_email_creates_a_person_in_the_keys_account(self, ingest, world):
        ingest.post(URL, identify(email="someone@other.example", fields={"first_name": "Z"}))
        world.other_person.refresh_from_db()
        assert world.other_person.first_name == ""
        assert Person.objects.filter(account=world.account,
                                     email="someone@other.example").exists()

    def test_a_ceiling_without_people_write_cannot_carry_the_ingest_scope(self, world):
        with pytest.raises(ValidationError, match="events:write"):
            make_key(world.account, world.members["owner"], scopes=["events:write"],
                     role_ceiling="analyst")

    def test_key_whose_creator_lost_people_write_sends_nothing(self, world):
        from enclave.accounts.actions import do_change_role

        client = ingest_client(world)  # made by the owner
        do_change_role(world.membership("owner"), "analyst",
                       actor=acting(new_member("second@acme.example", world.account,
                                               "owner"), world.account))
        refused = client.post(URL, identify(email="a@example.com"))
        anonymous = client.post(URL, {"type": "track", "event": "x"})
        assert (refused.status_code, anonymous.status_code) == (403, 403)
        assert not Event.objects.exists()
        assert not Person.objects.filter(email="a@example.com").exists()


def _stable(response) -> dict:
    body = response.json()
    return {k: v for k, v in body.items() if k not in ("trace_id", "instance")}


@pytest.mark.django_db
class TestExistenceIsNeverRevealed:
    """Ingest never tells a key whether a value it cannot see in full exists (both ways
    of asking: a track naming an address, an identify giving an address away)."""

    def test_write_only_key_gets_the_same_answer_for_a_known_and_an_unknown_address(
            self, ingest, world):
        known = ingest.post(URL, {"type": "track", "event": "x", "email": PERSON["email"]})
        unknown = ingest.post(URL, {"type": "track", "event": "x",
                                    "email": "nobody.yet@example.com"})
        assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
        assert known.status_code == 202

    def test_write_only_key_giving_a_taken_address_away_gets_the_same_answer(self, ingest,
                                                                            world):
        Person.objects.create(account=world.account, email="taken@example.com")
        taken = ingest.post(URL, identify(external_id=PERSON["external_id"],
                                          email="taken@example.com"))
        free = ingest.post(URL, identify(external_id=PERSON["external_id"],
                                         email="free@example.com"))
        assert (taken.status_code, taken.json()) == (free.status_code, free.json())
        world.person.refresh_from_db()
        assert world.person.email == "free@example.com"

    @pytest.mark.parametrize("event", [
        {"type": "track", "event": "x", "email": "{email}"},
        {"type": "identify", "email": "{email}"},
        {"type": "identify", "external_id": "{external_id}"},
    ], ids=["track-email", "identify-email", "identify-external-id"])
    def test_key_that_reads_the_audit_log_may_not_identify_by_a_value_it_cannot_see(
            self, world, event):
        client = ingest_client(world, scopes=["events:write", "audit:read"])
        def asked(email, external_id):
            body = {k: v.format(email=email, external_id=external_id)
                    for k, v in event.items()}
            return client.post(URL, body)
        known = asked(PERSON["email"], PERSON["external_id"])
        unknown = asked("nobody.yet@example.com", "no-such-id")
        assert known.status_code == unknown.status_code == 422
        assert _stable(known) == _stable(unknown)
        assert not Event.objects.exists()
        assert not Person.objects.filter(email="nobody.yet@example.com").exists()

    def test_key_that_reads_the_audit_log_may_still_send_anonymous_events(self, world):
        client = ingest_client(world, scopes=["events:write", "audit:read"])
        assert client.post(URL, {"type": "track", "event": "x"}).status_code == 202

    def test_write_only_key_moving_an_address_through_a_batch_gets_the_same_answer(
            self, ingest, world):
        """A batch that hands the candidate's person an address another person gives up
        in the same batch: when the candidate exists, that is an update of two existing
        rows at once; when not, an update and an insert. Both must be accepted alike."""
        def probe(candidate: str, tag: str):
            ingest.post(URL, identify(external_id=f"{tag}-b", email=f"{tag}-b@probe.example"))
            return ingest.post(URL, {"batch": [
                identify(external_id=f"{tag}-b", email=f"{tag}-tmp@probe.example"),
                identify(email=candidate, external_id=f"{tag}-v"),
                identify(external_id=f"{tag}-v", email=f"{tag}-b@probe.example")]})

        known = probe(PERSON["email"], "k")
        unknown = probe("nobody.yet@example.com", "u")
        assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
        assert known.status_code == 202

    def test_key_that_sees_email_in_full_is_told_of_a_conflict(self, world):
        Person.objects.create(account=world.account, email="taken@example.com")
        client = ingest_client(world, scopes=["events:write", "people:read"])
        response = client.post(URL, identify(external_id=PERSON["external_id"],
                                             email="taken@example.com"))
        assert response.status_code == 409
        assert response.json()["errors"] == {
            "email": ["Another person has this email address."]}


@pytest.mark.django_db
class TestTrack:
    def test_track_links_to_the_existing_person(self, ingest, world):
        ingest.post(URL, {"type": "track", "event": "Bought", "email": PERSON["email"]})
        assert Event.objects.get().person_id == world.person.pk

    def test_track_for_an_unknown_person_creates_a_minimal_person(self, ingest, world):
        ingest.post(URL, {"type": "track", "event": "Bought", "external_id": "new-1"})
        person = Person.objects.get(account=world.account, external_id="new-1")
        assert Event.objects.get().person_id == person.pk
        assert (person.email, person.first_name) == ("", "")

    def test_track_without_person_is_anonymous(self, ingest):
        ingest.post(URL, {"type": "track", "event": "Viewed"})
        assert Event.objects.get().person_id is None

    def test_erasing_a_person_deletes_their_events(self, ingest, world):
        ingest.post(URL, {"batch": [{"type": "track", "event": "a", "email": PERSON["email"]},
                                    {"type": "track", "event": "b"}]})
        people_actions.do_erase_person(world.person, actor=world.actor("owner"))
        assert list(Event.objects.values_list("name", flat=True)) == ["b"]


@pytest.mark.django_db
class TestIdentityChanges:
    def test_email_given_up_in_a_batch_can_be_taken_by_a_new_person(self, ingest, world):
        response = ingest.post(URL, {"batch": [
            identify(external_id=PERSON["external_id"], email="moved@example.com"),
            identify(email=PERSON["email"], fields={"first_name": "Newcomer"})]})
        assert response.status_code == 202
        world.person.refresh_from_db()
        newcomer = Person.objects.get(account=world.account, email=PERSON["email"])
        assert world.person.email == "moved@example.com"
        assert newcomer.pk != world.person.pk
        assert newcomer.first_name == "Newcomer"

    def test_two_known_people_swap_addresses_in_one_batch(self, ingest, world):
        other = Person.objects.create(account=world.account, email="second@example.com",
                                      external_id="second")
        response = ingest.post(URL, {"batch": [
            identify(external_id="second", email="parked@example.com"),
            identify(external_id=PERSON["external_id"], email="second@example.com"),
            identify(external_id="second", email=PERSON["email"])]})
        assert response.status_code == 202
        world.person.refresh_from_db()
        other.refresh_from_db()
        assert (world.person.email, other.email) == ("second@example.com", PERSON["email"])

    def test_same_tag_twice_for_one_person_in_a_batch_is_added_once(self, ingest, world):
        response = ingest.post(URL, {"batch": [identify(email=PERSON["email"], tags=["x"]),
                                               identify(email=PERSON["email"], tags=["x"])]})
        assert response.status_code == 202
        assert tags_of(world.person) == ["x"]
