"""Password hashing (argon2id) and Enclave's password rules.

NIST SP 800-63B: length is what counts. Minimum 12 (``ENCLAVE_PASSWORD_MIN_LENGTH``,
never below 8), maximum 1024, any Unicode including spaces, no composition rules, no
periodic change. Common passwords and passwords built from the member's own email or
account name are refused.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.core.exceptions import ValidationError


class EnclaveArgon2Hasher(Argon2PasswordHasher):
    """argon2id with the parameters in ``settings.ARGON2_PARAMETERS``.

    Parameters are read at call time, so raising them in settings makes ``must_update``
    true for older hashes and Django rehashes them at the next successful login.
    """

    @property
    def time_cost(self) -> int:  # type: ignore[override]
        return settings.ARGON2_PARAMETERS["time_cost"]

    @property
    def memory_cost(self) -> int:  # type: ignore[override]
        return settings.ARGON2_PARAMETERS["memory_cost"]

    @property
    def parallelism(self) -> int:  # type: ignore[override]
        return settings.ARGON2_PARAMETERS["parallelism"]


def meets_policy(params: dict, minimum: dict) -> bool:
    """True when every argon2 cost parameter is at or above the policy floor."""
    return all(params.get(k, 0) >= v for k, v in minimum.items())


class MaximumLengthValidator:
    """Refuse passwords longer than ``settings.PASSWORD_MAX_LENGTH`` (hashing cost bound)."""

    def validate(self, password: str, user=None) -> None:
        limit = settings.PASSWORD_MAX_LENGTH
        if len(password) > limit:
            raise ValidationError(f"Passwords are at most {limit} characters.",
                                  code="password_too_long")

    def get_help_text(self) -> str:
        return f"Your password can be up to {settings.PASSWORD_MAX_LENGTH} characters."


_NOT_WORD = re.compile(r"[\W\d_]+", re.UNICODE)


def identity_words(email: str, account_names: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The words a password must not be built from: email local part and domain labels
    (split on punctuation), and each account name's words. Words under 3 letters are
    ignored (too short to matter, and they would over-match)."""
    local, _, domain = email.lower().partition("@")
    words = [local, *_NOT_WORD.split(local), *domain.split(".")[:-1]]
    for name in account_names:
        words += [name.lower(), *_NOT_WORD.split(name.lower())]
    return sorted({w for w in words if len(w) >= 3}, key=len, reverse=True)


class NotFromIdentityValidator:
    """Refuse a password that is mostly the member's email or account name.

    The identity words are removed from the lower-cased password, then digits, spaces
    and punctuation; if fewer than ``min_rest`` letters remain the password was built
    from things an attacker already knows ("acme-corp-2024!", "jane.doe@acme 12345").
    The account names come from ``user.identity_account_names`` (set by the sign-up
    and invitation actions) or, for an existing member, from their memberships.
    """

    def __init__(self, min_rest: int = 8) -> None:
        self.min_rest = min_rest

    def validate(self, password: str, user=None) -> None:
        if user is None or not getattr(user, "email", ""):
            return
        names = list(getattr(user, "identity_account_names", ()))
        if user.pk:
            names += [m.account.name for m in user.memberships.select_related("account")]
        rest = password.lower()
        for word in identity_words(user.email, names):
            rest = rest.replace(word, "")
        if len(_NOT_WORD.sub("", rest)) < self.min_rest:
            raise ValidationError(
                "This password is built from your email address or account name.",
                code="password_from_identity")

    def get_help_text(self) -> str:
        return "Your password cannot be built from your email address or account name."
