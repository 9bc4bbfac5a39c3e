"""CSV cells that a spreadsheet will not run as formulas (OWASP "CSV injection")."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """Prefix a single quote when ``value`` starts with = + - @ tab or CR."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value
