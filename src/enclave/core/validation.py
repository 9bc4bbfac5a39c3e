"""Input checks shared by several apps (one wording everywhere)."""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import Http404

MAX_EMAIL_LENGTH = 254


class MissingReference(ValidationError):
    """A request body names something (a person, a segment, a topic) that its account
    does not have. The request itself is well formed; the data it points at is not there,
    so the API answers 409 ``conflict`` (not 404: the resource in the URL exists) and pages
    show the message on the form. Another account's thing is answered exactly like a
    missing one."""


def canonical_email(email: str) -> str:
    """The one form of an email address that identity compares, stores and throttles on.

    Unicode NFKC, then full case folding, then NFKC again (idempotent): "ALICE@EXAMPLE.COM",
    "alice@example.com" and fullwidth "ａｌｉｃｅ@example.com" are all "alice@example.com";
    "STRAßE@x" is "strasse@x". The database only ever compares canonical strings exactly,
    so SQLite and PostgreSQL agree (their own case-insensitive matching does not: SQLite
    folds ASCII only, PostgreSQL's ``UPPER`` turns a dotless "ı" into "I"). Folding the
    domain part matches delivery: Django's mailer encodes domains with IDNA 2003, whose
    nameprep folds case (and ß to ss) the same way. Does not validate; see
    :func:`clean_email`.
    """
    folded = unicodedata.normalize("NFKC", email).casefold()
    # Stripped last: NFKC can turn a character into space + combining mark.
    return unicodedata.normalize("NFKC", folded).strip()


def clean_email(email: str) -> str:
    """Return ``email`` in canonical form (:func:`canonical_email`); raise
    ValidationError({"email": ...}) if it is not a valid address."""
    email = canonical_email(email)
    if len(email) > MAX_EMAIL_LENGTH:
        raise ValidationError({"email": "Email addresses are at most 254 characters."})
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid email address."}) from None
    return email


def clean_name(value, noun: str, limit: int = 100) -> str:
    """A thing's display name: whitespace collapsed, not empty, at most ``limit``
    characters, no NUL; ValidationError({"name": ...}) naming the ``noun`` otherwise."""
    name = " ".join(str(value or "").split())
    if not name:
        raise ValidationError({"name": f"Give the {noun} a name."})
    if len(name) > limit or "\x00" in name:
        raise ValidationError({"name": f"At most {limit} characters, no NUL."})
    return name


def whole_number(raw: str, max_digits: int = 18) -> int | None:
    """``raw`` (a form or query value) as a non-negative integer when it is 1 to
    ``max_digits`` ASCII digits, else None. ``str.isdigit`` alone also accepts "²" and
    other Unicode digits that ``int()`` refuses."""
    raw = (raw or "").strip()
    if raw.isascii() and raw.isdigit() and len(raw) <= max_digits:
        return int(raw)
    return None


def id_or_404(value, kind: str) -> int:
    """``value`` (a row id from a URL or a request, an int or its text) as an int; Http404
    "No such <kind>." — the answer for a row that is not there — when it is not a positive
    64-bit integer."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Http404(f"No such {kind}.") from None
    if not 0 < number < 2**63:
        raise Http404(f"No such {kind}.")
    return number
