"""Input checks shared by several apps (one wording everywhere)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

MAX_EMAIL_LENGTH = 254


def clean_email(email: str) -> str:
    """Return ``email`` stripped; raise ValidationError({"email": ...}) if it is invalid."""
    email = email.strip()
    if len(email) > MAX_EMAIL_LENGTH:
        raise ValidationError({"email": "Email addresses are at most 254 characters."})
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid email address."}) from None
    return email
