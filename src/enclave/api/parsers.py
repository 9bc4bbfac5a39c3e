"""Request parsing for the API: JSON only, nested at most jsondepth.MAX_DEPTH levels, and
only text the database can store."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

from enclave.core import jsondepth


class TooDeep(ParseError):
    """400 ``too-deep``: the body nests deeper than :data:`jsondepth.MAX_DEPTH`."""

    problem_slug = "too-deep"


def unstorable(value) -> str | None:
    """Why ``value`` (parsed JSON, at most jsondepth.MAX_DEPTH deep) cannot be stored, or
    None.

    PostgreSQL text refuses NUL characters and lone UTF-16 surrogates cannot be encoded
    as UTF-8; both would otherwise surface as a database error (a 500) deep inside an
    action.
    """
    if isinstance(value, str):
        return _bad_text(value)
    if isinstance(value, dict):
        for key, item in value.items():
            reason = _bad_text(key) or unstorable(item)
            if reason:
                return reason
    elif isinstance(value, list):
        for item in value:
            reason = unstorable(item)
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
    """DRF's JSON parser (strict: no NaN/Infinity), refusing documents nested deeper than
    jsondepth.MAX_DEPTH (before parsing: Python's json would raise RecursionError, a 500)
    and text that cannot be stored."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})  # text charsets only (DRF)
        try:
            data = jsondepth.loads(stream.read().decode(encoding), parse_constant=(
                json.strict_constant if self.strict else None))
        except jsondepth.TooDeep as exc:
            raise TooDeep(str(exc)) from None
        except ValueError as exc:  # also UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}") from None
        reason = unstorable(data)
        if reason:
            raise ParseError(reason)
        return data
