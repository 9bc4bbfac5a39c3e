"""How deeply JSON may nest — the limits, as data in one place, and the check before parsing.

Python's json and msgspec recurse once per level: a body of 100,000 ``[`` raises
RecursionError (a 500) in the parser, and a value stored that deep would break everything
that walks it later (rendering, exports, the log redaction). So:

* :data:`MAX_DEPTH` — any JSON Enclave reads from a request (REST bodies, the ingest
  body, page cursors) nests at most this many arrays/objects; deeper is refused
  (400 ``too-deep``) **before** a parser sees it, by :func:`check`, which never recurses.
* :data:`MAX_STORED_DEPTH` — a free-form value Enclave stores (event ``properties``; the
  properties object itself is level 1) nests at most this many; deeper is a field error
  (422). Person custom data take single values only, so they cannot nest at all.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

MAX_DEPTH = 32
MAX_STORED_DEPTH = 16

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
# translate() deletes every byte except the quote and the brackets.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class TooDeep(ValueError):
    """The document nests deeper than :data:`MAX_DEPTH` (a ValueError, so code that
    refuses malformed JSON with ``except ValueError`` refuses this too)."""

    def __init__(self, found: int) -> None:
        self.found = found
        super().__init__(f"The JSON nests arrays and objects {found} levels deep; at most "
                         f"{MAX_DEPTH} are accepted.")


def _utf8(document: bytes | str) -> bytes:
    return document.encode("utf-8", "surrogatepass") if isinstance(document, str) else document


def depth(document: bytes | str) -> int:
    """How many arrays/objects are open at the deepest point of ``document`` (JSON text;
    0 for a scalar). Brackets inside strings do not count. Linear, in C-speed steps, and
    never recursive, so it is safe on any input, malformed or not: a parser that reads
    the same text never goes deeper than this."""
    data = _utf8(document)
    if b"\\" in data:
        # Escapes live inside strings; dropping them keeps \" from ending one.
        data = _ESCAPE.sub(b"", data)
    # What is left between quotes is string content: every second piece.
    outside = b"".join(data.translate(None, _NOT_STRUCTURE).split(b'"')[::2])
    return max(0, max(itertools.accumulate(map(_STEP.__getitem__, outside)), default=0))


def check(document: bytes | str) -> None:
    """Raise :class:`TooDeep` when ``document`` nests deeper than :data:`MAX_DEPTH`."""
    data = _utf8(document)
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return  # it cannot nest deeper than it opens
    found = depth(data)
    if found > MAX_DEPTH:
        raise TooDeep(found)


def loads(document: bytes | str, **kwargs: Any) -> Any:
    """``json.loads`` for request data: :class:`TooDeep` (a ValueError) instead of a
    RecursionError for deep documents."""
    check(document)
    return json.loads(document, **kwargs)
