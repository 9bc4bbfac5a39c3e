"""Errors of the dependency audit that are the caller's input, not a finding."""

from __future__ import annotations


class AuditInputError(Exception):
    """The lock or the advisory data cannot be used at all (CLI exit 2).

    ``str()`` is one line naming the file, fit to print as-is.
    """
