"""The ingest payload decoder (msgspec): shapes, limits and error locations. No database."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from enclave.events import schema
from enclave.events.schema import EventErrors, Identify, PayloadError, Track


def errors_of(body) -> dict:
    with pytest.raises(EventErrors) as caught:
        schema.parse(body if isinstance(body, bytes) else json.dumps(body).encode())
    return caught.value.errors


def parse(body) -> schema.Payload:
    return schema.parse(json.dumps(body).encode())


class TestShapes:
    def test_single_event_is_not_batched(self):
        payload = parse({"type": "track", "event": "Opened"})
        assert payload.batched is False
        assert payload.events == (Track(event="Opened"),)

    def test_batch_keeps_order_and_types(self):
        payload = parse({"batch": [{"type": "identify", "email": "a@example.com"},
                                   {"type": "track", "event": "x"}]})
        assert [type(e) for e in payload.events] == [Identify, Track]

    def test_timestamp_with_offset_is_parsed(self):
        event = parse({"type": "track", "event": "x",
                       "timestamp": "2026-01-02T03:04:05+01:00"}).events[0]
        assert event.timestamp == dt.datetime(2026, 1, 2, 2, 4, 5, tzinfo=dt.UTC)


class TestRefused:
    def test_not_json_is_a_payload_error(self):
        with pytest.raises(PayloadError):
            schema.parse(b"{nope")

    def test_json_that_is_not_an_object_is_a_payload_error(self):
        with pytest.raises(PayloadError):
            schema.parse(b'"track"')

    def test_unknown_field_is_named(self):
        assert errors_of({"type": "track", "event": "x", "evnet": "y"}) == {
            "evnet": ["Unknown field."]}

    def test_unknown_top_level_key_next_to_batch(self):
        assert list(errors_of({"batch": [{"type": "track", "event": "x"}], "extra": 1})) == [
            "extra"]

    def test_every_bad_event_is_reported_by_position(self):
        errors = errors_of({"batch": [{"type": "track", "event": "ok"}, {"type": "track"},
                                      {"type": "identify"}, {"type": "nope"}]})
        assert set(errors) == {"batch.1.event", "batch.2.email", "batch.3.type"}

    def test_naive_timestamp_is_refused(self):
        assert list(errors_of({"type": "track", "event": "x",
                               "timestamp": "2026-01-02T03:04:05"})) == ["timestamp"]

    def test_bad_email_is_refused(self):
        assert errors_of({"type": "track", "event": "x", "email": "no at sign"}) == {
            "email": ["Enter a valid email address."]}

    def test_blank_external_id_is_refused(self):
        assert list(errors_of({"type": "identify", "external_id": "   "})) == ["external_id"]

    def test_over_long_event_name_is_refused(self):
        assert list(errors_of({"type": "track", "event": "x" * 201})) == ["event"]

    def test_too_many_properties_are_refused(self):
        props = {f"k{i}": i for i in range(schema.MAX_PROPERTIES + 1)}
        assert list(errors_of({"type": "track", "event": "x", "properties": props})) == [
            "properties"]

    def test_field_value_must_be_a_single_value(self):
        assert list(errors_of({"type": "identify", "email": "a@example.com",
                               "fields": {"first_name": ["A"]}})) == ["fields"]

    def test_properties_nested_too_deeply_are_refused(self):
        deep: list = []  # the properties object, then MAX_PROPERTIES_DEPTH lists
        for _ in range(schema.MAX_PROPERTIES_DEPTH - 1):
            deep = [deep]
        assert list(errors_of({"type": "track", "event": "x", "properties": {"d": deep}})) == [
            "properties"]

    def test_properties_at_the_limit_are_accepted(self):
        deep: list = []  # the properties object, then MAX_PROPERTIES_DEPTH - 1 lists
        for _ in range(schema.MAX_PROPERTIES_DEPTH - 2):
            deep = [deep]
        assert parse({"type": "track", "event": "x", "properties": {"d": deep}}).events[
            0].properties == {"d": deep}

    def test_pathological_nesting_is_too_deep_not_a_crash(self):
        from enclave.core.jsondepth import TooDeep

        body = b'{"type":"track","event":"x","properties":{"a":' + b"[" * 100_000 + \
            b"]" * 100_000 + b"}}"
        with pytest.raises(TooDeep):
            schema.parse(body)

    def test_nul_in_a_property_is_located(self):
        body = b'{"type":"track","event":"x","properties":{"a":["ok","b\\u0000"]}}'
        assert errors_of(body) == {"properties.a.1": ["Text may not contain NUL characters."]}

    def test_empty_batch_is_refused(self):
        assert errors_of({"batch": []}) == {"batch": ["Send at least one event."]}

    def test_batch_over_the_limit_is_refused_before_decoding_events(self):
        errors = errors_of({"batch": [{} for _ in range(schema.MAX_EVENTS + 1)]})
        assert list(errors) == ["batch"]


class TestOpenApi:
    def test_request_schema_refers_only_to_its_own_components(self):
        text = json.dumps(schema.openapi_request_schema())
        refs = set(re.findall(r'"#/components/schemas/([^"]+)"', text))
        assert refs
        assert refs <= set(schema.openapi_components())
