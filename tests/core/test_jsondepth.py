"""The JSON depth limit: measured on the text, before any parser recurses."""

from __future__ import annotations

import json

import pytest

from enclave.core import jsondepth
from enclave.core.jsondepth import MAX_DEPTH, TooDeep


def nested_lists(levels: int) -> str:
    return "[" * levels + "]" * levels


def nested_objects(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


class TestDepth:
    @pytest.mark.parametrize(("document", "expected"), [
        ("1", 0), ('"x"', 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4),
        ("[[], [[]], []]", 3), (nested_objects(5), 5),
    ])
    def test_depth_is_the_most_containers_open_at_once(self, document, expected):
        assert jsondepth.depth(document) == expected

    def test_brackets_inside_strings_do_not_count(self):
        assert jsondepth.depth(json.dumps({"a": "[[[[{{{{" * 20})) == 1

    def test_escaped_quotes_do_not_end_a_string(self):
        assert jsondepth.depth(json.dumps(["\\\"[[[[", "\"{{{{"])) == 1

    def test_bytes_and_text_agree(self):
        document = json.dumps({"é": [["ü[", {"x": "\\"}]]})
        assert jsondepth.depth(document) == jsondepth.depth(document.encode()) == 4


class TestCheck:
    def test_document_at_the_limit_passes(self):
        jsondepth.check(nested_lists(MAX_DEPTH))

    @pytest.mark.parametrize("document", [nested_lists(MAX_DEPTH + 1),
                                          nested_objects(MAX_DEPTH + 1)])
    def test_document_over_the_limit_is_too_deep(self, document):
        with pytest.raises(TooDeep, match=f"{MAX_DEPTH + 1} levels deep"):
            jsondepth.check(document)

    def test_unclosed_brackets_count_too(self):
        with pytest.raises(TooDeep):
            jsondepth.check("[" * 100_000)

    def test_many_shallow_containers_are_not_deep(self):
        jsondepth.check(json.dumps([[i] for i in range(10_000)]))


class TestLoads:
    def test_pathological_nesting_is_a_value_error_not_a_recursion_error(self):
        with pytest.raises(ValueError, match="at most 32 are accepted"):
            jsondepth.loads(nested_lists(100_000))

    def test_document_at_the_limit_is_parsed(self):
        value = jsondepth.loads(nested_objects(MAX_DEPTH))
        for _ in range(MAX_DEPTH):
            value = value["a"]
        assert value == 1
