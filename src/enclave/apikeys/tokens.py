"""The API-key token format: recognisable, environment-named, checksummed.

    enc_<env>_<public id>_<secret><checksum>
    enc_live_4fTq9ZbW2kXa_Vd3...(32 chars)...k9Q2aZ

* ``enc_`` + environment code (``live`` production, ``stg`` staging, ``test``, ``dev``):
  secret scanners (and our own log redaction detector ``enclave_api_key``) spot leaked
  keys by this prefix, and a key from another environment is refused before any lookup.
* public id: 12 base62 characters, unique, shown in the UI, audit rows and logs.
* secret: 32 base62 characters from :mod:`secrets` (~190 bits).
* checksum: CRC32 of everything before it, 6 base62 characters (GitHub-token style), so a
  mistyped or truncated key is rejected without touching the database.

The database keeps only the public id and a keyed HMAC of the whole token
(``enclave.keys.api.mac("tokens", ...)``); the token itself is shown once.
"""

from __future__ import annotations

import re
import secrets
import zlib
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PUBLIC_ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
ENV_CODES = {"production": "live", "staging": "stg", "test": "test", "dev": "dev"}
CODE_ENVS = {code: env for env, code in ENV_CODES.items()}
TOKEN_RE = re.compile(
    rf"^enc_(?P<env>[a-z]{{3,4}})_(?P<public_id>[0-9A-Za-z]{{{PUBLIC_ID_LENGTH}}})"
    rf"_(?P<secret>[0-9A-Za-z]{{{SECRET_LENGTH}}})(?P<checksum>[0-9A-Za-z]{{{CHECKSUM_LENGTH}}})$")
PUBLIC_ID_RE = re.compile(rf"^[0-9A-Za-z]{{{PUBLIC_ID_LENGTH}}}$")
MAX_TOKEN_LENGTH = 80


class TokenFormatError(ValueError):
    """The text is not a well-formed Enclave API key. ``reason``: malformed | checksum."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class ParsedToken:
    environment: str  # production / staging / test / dev
    public_id: str
    token: str


def base62(number: int, width: int) -> str:
    out = []
    while number:
        number, rem = divmod(number, 62)
        out.append(ALPHABET[rem])
    return "".join(reversed(out)).rjust(width, "0")


def _random(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def checksum(body: str) -> str:
    return base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def new_public_id() -> str:
    return _random(PUBLIC_ID_LENGTH)


def make_token(environment: str, public_id: str) -> str:
    """A fresh token for ``public_id`` in ``environment`` (KeyError for an unknown one)."""
    body = f"enc_{ENV_CODES[environment]}_{public_id}_{_random(SECRET_LENGTH)}"
    return body + checksum(body)


def parse(text: str) -> ParsedToken:
    """Check the shape and checksum of ``text``. Raises :class:`TokenFormatError`.

    Never touches the database: garbage and typos stop here.
    """
    if not isinstance(text, str) or len(text) > MAX_TOKEN_LENGTH:
        raise TokenFormatError("malformed", "The API key is not in Enclave's key format.")
    match = TOKEN_RE.match(text)
    if match is None or match["env"] not in CODE_ENVS:
        raise TokenFormatError("malformed", "The API key is not in Enclave's key format "
                               "(enc_<env>_<public id>_<secret>).")
    if checksum(text[:-CHECKSUM_LENGTH]) != match["checksum"]:
        raise TokenFormatError("checksum", "The API key's checksum does not match: it was "
                               "mistyped or truncated.")
    return ParsedToken(CODE_ENVS[match["env"]], match["public_id"], text)


def public_id_of(text: str) -> str | None:
    """The public id of a well-formed token (any environment), else None."""
    try:
        return parse(text).public_id
    except TokenFormatError:
        return None


def find_tokens(text: str) -> list[str]:
    """Well-formed tokens anywhere in ``text`` (for exposure handling: headers, queries)."""
    pattern = TOKEN_RE.pattern.strip("^$")
    found = []
    for match in re.finditer(pattern, text or ""):
        if public_id_of(match.group(0)) is not None:
            found.append(match.group(0))
    return found
