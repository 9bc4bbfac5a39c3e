"""CSV import: parse and validate a whole file before anything is written.

``plan_import`` returns an ``ImportPlan`` with every row cleaned or a list of per-row
errors; ``actions.do_import_people`` writes a plan without errors in ONE transaction
(all-or-nothing per file).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from enclave.people import visibility
from enclave.people.actions import EDITABLE, clean_row, row_cleaner
from enclave.people.models import FieldDefinition

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
MAX_ERRORS = 200


@dataclass(frozen=True)
class RowError:
    line: int  # 1 = the header line
    column: str
    message: str


@dataclass
class ImportPlan:
    columns: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # file line of each row
    errors: list[RowError] = field(default_factory=list)
    # Each row cleaned: (built-in fields, custom values, tags or None), and the keys of
    # the account's "encrypt at rest" fields, as validated (do_import_people writes these).
    cleaned: list[tuple[dict, dict, list[str] | None]] = field(default_factory=list)
    sealed_keys: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.rows)


class ImportFileError(Exception):
    """The file as a whole cannot be read. ``str()`` is safe to show."""


def decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise ImportFileError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ImportFileError(f"The file is not UTF-8 text (first bad byte on line {line}). "
                              "Save it as CSV UTF-8 and try again.") from None
    if "\x00" in text:
        # PostgreSQL cannot store NUL in text or JSON: refuse the file, never fail mid-write.
        line = text[:text.index("\x00")].count("\n") + 1
        raise ImportFileError(f"The file contains a NUL character (line {line}); it is not a "
                              "CSV text file.")
    return text


def _check_header(header: list[str], definitions: dict, perms) -> list[str]:
    keys = {f"custom.{k}" for k in definitions}
    allowed = set(EDITABLE) | {"tags"} | keys
    columns = [h.strip() for h in header]
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise ImportFileError(f"Unknown column(s): {', '.join(unknown)}. Allowed: "
                              f"{', '.join(sorted(allowed))}.")
    # Like the edit form: a member writes only the fields they see in full.
    hidden = [c for c in columns if c != "tags" and visibility.field_level(
        perms, c, definitions.values()) != visibility.VISIBLE]
    if hidden:
        raise ImportFileError(f"Your role cannot import column(s) {', '.join(hidden)}: it "
                              "sees them masked or not at all. Remove them from the file.")
    if len(set(columns)) != len(columns):
        raise ImportFileError("A column appears twice in the header.")
    if "email" not in columns and "external_id" not in columns:
        raise ImportFileError("The file needs an email or an external_id column.")
    return columns


def plan_import(data: bytes, account_id: int, perms) -> ImportPlan:
    """Validate the whole file for a member holding ``perms``. Raises ImportFileError for
    file-level problems (including a column the member does not see in full); row
    problems are collected in ``plan.errors`` (at most ``MAX_ERRORS``)."""
    text = decode(data)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        header = next(reader, None)
        if not header:
            raise ImportFileError("The file is empty.")
        definitions = {d.key: d for d in FieldDefinition.objects.filter(account_id=account_id)}
        plan = ImportPlan(columns=_check_header(header, definitions, perms),
                          sealed_keys=frozenset(k for k, d in definitions.items()
                                                if d.encrypt_at_rest))
        clean = row_cleaner(definitions, plan.columns)
        width, errors, rows = len(plan.columns), plan.errors, plan.rows
        seen: tuple[dict[str, int], dict[str, int]] = ({}, {})
        for line, cells in enumerate(reader, start=2):
            if len(errors) >= MAX_ERRORS:
                break
            if not "".join(cells).strip():  # blank line, or only spaces
                continue
            if len(rows) >= MAX_ROWS:
                raise ImportFileError(f"The file has more than {MAX_ROWS} rows; split it.")
            if len(cells) != width:
                errors.append(RowError(line, "", f"Expected {width} values, "
                                                 f"found {len(cells)}."))
                continue
            try:
                cleaned = clean(cells)
            except ValueError:  # collect every error of the row the slow way
                cleaned = None
            _plan_row(plan, line, cells, definitions, seen, cleaned)
    except csv.Error as exc:
        raise ImportFileError(f"The file is not valid CSV: {exc}.") from None
    if not plan.rows and not plan.errors:
        raise ImportFileError("The file has a header but no rows.")
    return plan


def _plan_row(plan: ImportPlan, line: int, cells, definitions: dict, seen,
              cleaned) -> None:
    row = dict(zip(plan.columns, cells, strict=True))
    if cleaned is None:
        builtin, custom, tags, errors = clean_row(definitions, row)
        if errors:
            for column, messages in errors.items():
                plan.errors.append(RowError(line, column, " ".join(messages)))
            return
        cleaned = builtin, custom, tags
    builtin = cleaned[0]
    for key, owners in zip(("email", "external_id"), seen, strict=True):
        value = builtin.get(key)
        if value:
            first = owners.setdefault(value, line)
            if first != line:
                plan.errors.append(RowError(line, key, f"Duplicate {key} (first on line "
                                                       f"{first})."))
                return
    plan.rows.append(row)
    plan.lines.append(line)
    plan.cleaned.append(cleaned)
