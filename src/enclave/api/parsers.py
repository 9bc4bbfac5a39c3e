"""Request parsing for the API: JSON only, and only text the database can store."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 16


def unstorable(value, depth: int = 0) -> str | None:
    """Why ``value`` (parsed JSON) cannot be stored, or None.

    PostgreSQL text refuses NUL characters and lone UTF-16 surrogates cannot be encoded
    as UTF-8; both would otherwise surface as a database error (a 500) deep inside an
    action. Deeply nested values are refused too (nothing in the API nests that far).
    """
    if depth > MAX_DEPTH:
        return "The body is nested too deeply."
    if isinstance(value, str):
        return _bad_text(value)
    if isinstance(value, dict):
        for key, item in value.items():
            reason = _bad_text(key) or unstorable(item, depth + 1)
            if reason:
                return reason
    elif isinstance(value, list):
        for item in value:
            reason = unstorable(item, depth + 1)
            if reason:
                return reason
    return None


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "Text may not contain NUL characters."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Text must be valid Unicode (no lone surrogates)."
    return None


class StrictJSONParser(JSONParser):
    """DRF's JSON parser (strict: no NaN/Infinity), refusing text that cannot be stored."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        reason = unstorable(data)
        if reason:
            raise ParseError(reason)
        return data
