"""JSON for API responses: a person through the visibility formatter with the key's
permissions (``people.render``, shared with outgoing webhooks), and cursors."""

from __future__ import annotations

from enclave.api.errors import InvalidQuery
from enclave.people.render import BUILTIN_FIELDS, person_json, tags_of  # noqa: F401 — the API's views read them here

# --- cursors: the last id seen, in decimal ---
# A cursor's shape is documented (1–18 digits, the OpenAPI pattern), so every cursor the
# document calls valid is one the server takes: a client may build one, and one it did not
# get from us simply continues after that id.

def encode_cursor(last_id: int) -> str:
    return str(last_id)


def decode_cursor(token: str) -> int:
    """The id a cursor continues after; InvalidQuery unless it is 1–18 ASCII digits."""
    if not (token.isascii() and token.isdigit() and len(token) <= 18):
        raise InvalidQuery("The cursor is not valid (1-18 digits: the next_cursor of the "
                           "previous page); start again from the first page.")
    return int(token)


def page_limit(raw: str | None, default: int = 50, maximum: int = 200) -> int:
    """``limit`` from the query: absent → ``default``; present, it must be 1–``maximum``
    (an empty ``limit=`` is not a number: 400, as the schema says)."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise InvalidQuery(f"limit must be a whole number from 1 to {maximum}.")
    return int(raw)
