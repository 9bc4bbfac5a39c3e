"""People state changes. One transaction and one audit row each; audit rows name the
person by id and the changed fields by name — never a personal value."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email, validate_ipv46_address
from django.db import IntegrityError, transaction

from enclave.accounts import auditlog
from enclave.accounts.actions import membership_of
from enclave.accounts.permissions import has_perm
from enclave.backups import actions as backup_actions
from enclave.core import audit, clock
from enclave.core.models import AuditEvent, AuditEventType
from enclave.people import bulk, visibility
from enclave.people.models import (
    CONSENT_CHOICES,
    FIELD_TYPES,
    PD_CLASSES,
    ErasureTombstone,
    FieldDefinition,
    Person,
    PersonTag,
    Tag,
    sealed_values,
)

TEXT_LIMITS = {"email": 254, "first_name": 100, "last_name": 100, "phone": 32,
               "company": 200, "address": 500, "external_id": 100}
EDITABLE = (*TEXT_LIMITS, "country", "ip", "consent")
PHONE_RE = re.compile(r"^\+?[0-9 ()\-.]{3,31}$")
REASON_MAX = 500
CUSTOM_TEXT_MAX = 1000
TAG_MAX = 50


def _authorize(actor, account_id: int, codename: str) -> None:
    if not has_perm(membership_of(actor, account_id), codename):
        raise PermissionDenied(f"Your role does not include {codename}.")


# --- validation (pure; raises ValidationError keyed by field) ---

# A strict subset of what Django's validate_email accepts (plain ASCII dot-atoms with a
# letters-only TLD): a match skips the slower full validator, anything else gets it.
_SIMPLE_EMAIL = re.compile(r"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*@"
                           r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+"
                           r"[A-Za-z]{2,63}\Z")
_COUNTRY_RE = re.compile(r"[A-Za-z]{2}")


def _builtin_value(field: str, value) -> object:
    """The cleaned value of a built-in field; ValueError(message) when invalid.

    ValueError (not ValidationError) so bulk validation pays for an exception object
    only on bad values."""
    return _BUILTIN_CLEANERS[field]("" if value is None else str(value).strip())


# One cleaner per built-in field, each taking the value already stripped: a bulk import
# calls these hundreds of thousands of times, so no per-call dispatch on the field name.
def _limited(limit: int):
    def clean(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"At most {limit} characters.")
        return value
    return clean


def _clean_email(value: str) -> str:
    if len(value) > TEXT_LIMITS["email"]:
        raise ValueError(f"At most {TEXT_LIMITS['email']} characters.")
    if value and not _SIMPLE_EMAIL.match(value):
        try:
            validate_email(value)
        except ValidationError:
            raise ValueError("Enter a valid email address.") from None
    return value.lower()


def _clean_phone(value: str) -> str:
    if len(value) > TEXT_LIMITS["phone"]:
        raise ValueError(f"At most {TEXT_LIMITS['phone']} characters.")
    if value and not PHONE_RE.match(value):
        raise ValueError("Enter a phone number (digits, spaces, + ( ) - .).")
    return value


def _clean_country(value: str) -> str:
    if value and not _COUNTRY_RE.fullmatch(value):
        raise ValueError("Enter a two-letter country code (ISO 3166).")
    return value.upper()


def _clean_ip(value: str):
    if not value:
        return None
    try:
        validate_ipv46_address(value)
    except ValidationError:
        raise ValueError("Enter a valid IPv4 or IPv6 address.") from None
    return value


def _clean_consent(value: str) -> str:
    value = value or "unknown"
    if value not in CONSENT_CHOICES:
        raise ValueError("Choose unknown, granted or withdrawn.")
    return value


_BUILTIN_CLEANERS = {**{f: _limited(n) for f, n in TEXT_LIMITS.items()},
                     "email": _clean_email, "phone": _clean_phone, "country": _clean_country,
                     "ip": _clean_ip, "consent": _clean_consent}


def clean_custom_value(definition: FieldDefinition, value):
    """A custom field value converted to its JSON form; ValidationError when invalid."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return _CONVERTERS[definition.type](definition, value, str(value).strip())
    except ValueError as exc:
        raise ValidationError({f"custom.{definition.key}": str(exc)}) from None


def _to_text(definition, value, text):
    if len(text) > CUSTOM_TEXT_MAX:
        raise ValueError(f"At most {CUSTOM_TEXT_MAX} characters.")
    return text


def _to_number(definition, value, text):
    try:
        number = float(text)
    except ValueError:
        raise ValueError("Enter a number.") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("Enter a finite number.")
    return int(number) if number.is_integer() else number


def _to_date(definition, value, text):
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ValueError("Enter a date as YYYY-MM-DD.") from None


def _to_boolean(definition, value, text):
    if isinstance(value, bool):
        return value
    if text.lower() in ("true", "yes", "1"):
        return True
    if text.lower() in ("false", "no", "0"):
        return False
    raise ValueError("Enter yes or no.")


def _to_option(definition, value, text):
    if text not in definition.options:
        raise ValueError(f"Choose one of: {', '.join(definition.options)}.")
    return text


_CONVERTERS = {"text": _to_text, "number": _to_number, "date": _to_date,
               "boolean": _to_boolean, "select": _to_option}


def clean_person_data(account_id: int, data: dict) -> tuple[dict, dict, list[str] | None]:
    """Split and validate ``data`` into (built-in fields, custom values, tags or None).

    Unknown keys are refused. Raises one ValidationError listing every bad field.
    """
    definitions = {d.key: d for d in FieldDefinition.objects.filter(account_id=account_id)}
    builtin, custom, tags, errors = clean_row(definitions, data)
    if errors:
        raise ValidationError(errors)
    return builtin, custom, tags


def clean_row(definitions: dict, data: dict):
    """Like :func:`clean_person_data` against already-loaded ``definitions`` (key →
    FieldDefinition), without raising: returns (built-in, custom, tags or None, errors),
    errors being {field: [message, ...]} (empty when the row is valid). The bulk import
    validates every row of a file through this."""
    builtin, custom, tags, errors = {}, {}, None, {}
    for key, value in data.items():
        try:
            cleaner = _BUILTIN_CLEANERS.get(key)
            if cleaner is not None:
                builtin[key] = cleaner("" if value is None else str(value).strip())
            elif key == "tags":
                tags = _tag_names(value)
            elif key.startswith("custom.") and key[7:] in definitions:
                definition = definitions[key[7:]]
                if value is None or (isinstance(value, str) and not value.strip()):
                    custom[definition.key] = None
                else:
                    custom[definition.key] = _CONVERTERS[definition.type](
                        definition, value, str(value).strip())
            else:
                errors[key] = ["Unknown field."]
        except ValueError as exc:
            errors[key] = [str(exc)]
    return builtin, custom, tags, errors


def row_cleaner(definitions: dict, columns: Sequence[str]):
    """A fast :func:`clean_row` for many rows of string cells under the same
    ``columns`` (every one a built-in field, ``tags`` or a defined ``custom.<key>``):
    returns ``clean(cells) -> (built-in, custom, tags or None)``, which raises ValueError
    on the first bad value — the caller then runs :func:`clean_row` on that row for the
    full error list. Same rules and results as :func:`clean_row` on valid rows."""
    builtin_cols, custom_cols, tags_at = [], [], None
    for i, column in enumerate(columns):
        if column in _BUILTIN_CLEANERS:
            builtin_cols.append((i, column, _BUILTIN_CLEANERS[column]))
        elif column == "tags":
            tags_at = i
        elif column.startswith("custom.") and column[7:] in definitions:
            definition = definitions[column[7:]]
            custom_cols.append((i, definition.key, definition,
                                _CONVERTERS[definition.type]))
        else:
            raise ValueError(f"{column}: Unknown field.")

    def clean(cells: Sequence[str]):
        builtin = {key: cleaner(cells[i].strip()) for i, key, cleaner in builtin_cols}
        custom = {}
        for i, key, definition, convert in custom_cols:
            text = cells[i].strip()
            custom[key] = convert(definition, cells[i], text) if text else None
        return builtin, custom, None if tags_at is None else _tag_names(cells[tags_at])
    return clean


def _tag_names(value) -> list[str]:
    names = value.split(",") if isinstance(value, str) else list(value or [])
    out = sorted({" ".join(str(n).split()) for n in names} - {""})
    if any(len(n) > TAG_MAX for n in out):
        raise ValueError(f"Tags are at most {TAG_MAX} characters.")
    return out


def _set_tags(person: Person, names: list[str]) -> None:
    PersonTag.objects.filter(person=person).exclude(tag__name__in=names).delete()
    for name in names:
        tag, _ = Tag.objects.get_or_create(account_id=person.account_id, name=name)
        PersonTag.objects.get_or_create(person=person, tag=tag)


def _unique_error(exc: IntegrityError) -> ValidationError:
    text = str(exc)
    if "external_id" in text:
        return ValidationError({"external_id": "Another person has this external id."})
    return ValidationError({"email": "Another person has this email address."})


def _apply(person: Person, builtin: dict, custom: dict) -> list[str]:
    changed = [k for k, v in builtin.items() if getattr(person, k) != v]
    for key in changed:
        setattr(person, key, builtin[key])
    sealed_keys = set(FieldDefinition.objects.filter(
        account_id=person.account_id, encrypt_at_rest=True).values_list("key", flat=True))
    merged, sealed = dict(person.custom or {}), sealed_values(person)
    for key, value in custom.items():
        target = sealed if key in sealed_keys else merged
        if target.get(key) != value:
            changed.append(f"custom.{key}")
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    person.custom = merged
    if any(c.removeprefix("custom.") in sealed_keys for c in changed):
        person.sealed_custom = json.dumps(sealed, sort_keys=True) if sealed else None
    return changed


# --- actions ---

def do_create_person(account, data: dict, *, actor, request=None) -> Person:
    """Create a person in ``account`` (needs ``people.write``)."""
    _authorize(actor, account.pk, "people.write")
    builtin, custom, tags = clean_person_data(account.pk, data)
    try:
        with transaction.atomic():
            person = Person(account=account)
            changed = _apply(person, builtin, custom)
            person.save()
            if tags:
                _set_tags(person, tags)
            audit.record(AuditEventType.PERSON_CREATED, actor=actor, account_id=account.pk,
                         request=request, target_type="person", target_id=person.pk,
                         extra={"fields": sorted(changed)})
    except IntegrityError as exc:
        raise _unique_error(exc) from None
    return person


def do_update_person(person: Person, data: dict, *, actor, request=None) -> Person:
    """Change the given fields (needs ``people.write``); no change → no audit row."""
    _authorize(actor, person.account_id, "people.write")
    builtin, custom, tags = clean_person_data(person.account_id, data)
    try:
        with transaction.atomic():
            locked = Person.objects.select_for_update().get(pk=person.pk,
                                                            account_id=person.account_id)
            changed = _apply(locked, builtin, custom)
            if tags is not None:
                old = sorted(locked.person_tags.values_list("tag__name", flat=True))
                if old != tags:
                    _set_tags(locked, tags)
                    changed.append("tags")
            if not changed:
                return locked
            locked.updated_at = clock.now()
            locked.save()
            audit.record(AuditEventType.PERSON_UPDATED, actor=actor,
                         account_id=locked.account_id, request=request, target_type="person",
                         target_id=locked.pk, extra={"fields": sorted(changed)})
    except IntegrityError as exc:
        raise _unique_error(exc) from None
    return locked


def do_upsert_person(account, data: dict, *, actor, request=None) -> tuple[Person, bool]:
    """Update the person with this ``external_id`` (else this ``email``) or create one.

    Returns (person, created). Needs ``people.write``.
    """
    builtin, _, _ = clean_person_data(account.pk, data)
    existing = None
    if builtin.get("external_id"):
        existing = Person.objects.filter(account=account,
                                         external_id=builtin["external_id"]).first()
    if existing is None and builtin.get("email"):
        existing = Person.objects.filter(account=account, email=builtin["email"]).first()
    if existing is None:
        return do_create_person(account, data, actor=actor, request=request), True
    return do_update_person(existing, data, actor=actor, request=request), False


def do_archive_person(person: Person, *, actor, request=None) -> Person:
    """Archive (hide from lists; data kept). Needs ``people.write``."""
    _authorize(actor, person.account_id, "people.write")
    with transaction.atomic():
        locked = Person.objects.select_for_update().get(pk=person.pk)
        if locked.archived_at is not None:
            return locked
        locked.archived_at = clock.now()
        locked.save(update_fields=["archived_at"])
        audit.record(AuditEventType.PERSON_ARCHIVED, actor=actor, account_id=locked.account_id,
                     request=request, target_type="person", target_id=locked.pk)
    return locked


def do_erase_person(person: Person, *, actor, request=None) -> ErasureTombstone:
    """Erase a person (needs ``people.erase``): delete the row and its tags, scrub every
    audit row about them (``extra_data`` emptied, ``scrubbed`` set — the only change the
    append-only audit table allows) and keep an ``ErasureTombstone`` with ids only, so a
    restore from an older backup can erase them again (and the backups app's tombstone,
    which ``enclave.backups`` re-applies to every restored database)."""
    _authorize(actor, person.account_id, "people.erase")
    account_id, person_id = person.account_id, person.pk
    with transaction.atomic():
        Person.objects.filter(pk=person_id, account_id=account_id).delete()
        with auditlog.scrubbing():
            scrubbed = AuditEvent.objects.filter(
                account_id=account_id, target_type="person", target_id=str(person_id),
            ).update(extra_data={}, scrubbed=True)
        tombstone, _ = ErasureTombstone.objects.get_or_create(
            account_id=account_id, person_id=person_id)
        # Backups keep their own tombstone list (outside every backup) and re-apply it
        # to each restored database.
        backup_actions.do_record_erasure("people.person", person_id, actor=actor)
        audit.record(AuditEventType.PERSON_ERASED, actor=actor, account_id=account_id,
                     request=request, target_type="person", target_id=person_id,
                     extra={"audit_rows_scrubbed": scrubbed})
    return tombstone


def reapply_erasures(account_id: int | None = None) -> int:
    """After a restore: delete every person that has a tombstone. Returns how many."""
    rows = ErasureTombstone.objects.all()
    if account_id is not None:
        rows = rows.filter(account_id=account_id)
    deleted = 0
    with transaction.atomic():
        for stone in rows.iterator():
            deleted += Person.objects.filter(account_id=stone.account_id,
                                             pk=stone.person_id).delete()[1].get(
                                                 "people.Person", 0)
    return deleted


def do_reveal_value(person: Person, field: str, reason: str, *, actor, request=None) -> str:
    """Show one masked value in full to a member with ``people.unmask``; the reason is
    required and audited (the value itself is not)."""
    _authorize(actor, person.account_id, "people.unmask")
    reason = " ".join((reason or "").split())
    if not reason:
        raise ValidationError({"reason": "Say why you need to see this value."})
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"At most {REASON_MAX} characters."})
    definitions = list(FieldDefinition.objects.filter(account_id=person.account_id))
    try:
        visibility.field_class(field, definitions)
    except KeyError:
        raise ValidationError({"field": "Unknown field."}) from None
    with transaction.atomic():
        audit.record(AuditEventType.PERSON_VALUE_REVEALED, actor=actor,
                     account_id=person.account_id, request=request, target_type="person",
                     target_id=person.pk, extra={"field": field, "reason": reason})
    return visibility.as_text(visibility.raw_value(person, field))


def do_record_export(account, *, columns, filters, actor, request=None) -> None:
    """Audit a people export (needs ``people.export``): which columns, which filter names
    — never the filter values, which may be personal data."""
    _authorize(actor, account.pk, "people.export")
    with transaction.atomic():
        audit.record(AuditEventType.PEOPLE_EXPORTED, actor=actor, account_id=account.pk,
                     request=request, target_type="account", target_id=account.pk,
                     extra={"columns": list(columns), "filters": list(filters)})


def do_import_people(account, plan, *, actor, request=None) -> dict:
    """Write a validated ``importer.ImportPlan`` in ONE transaction: every row is
    upserted (external id, then email) or nothing is. Needs ``people.write``.

    The rows are written in bulk (``people.bulk``) with the same outcome as upserting
    them one by one in file order. Returns {"created": n, "updated": n}. Raises
    ValidationError when the plan has errors or a row breaks a unique key on write
    ("Line N: ..."; the whole file is rolled back).
    """
    _authorize(actor, account.pk, "people.write")
    if not plan.ok:
        raise ValidationError("The file has errors; nothing was imported.")
    cleaned, sealed_keys = plan.cleaned, plan.sealed_keys
    if len(cleaned) != len(plan.rows):  # a plan built by hand: clean it here
        definitions = {d.key: d for d in FieldDefinition.objects.filter(account_id=account.pk)}
        cleaned = [_clean_or_raise(definitions, line, row)
                   for line, row in zip(plan.lines, plan.rows, strict=True)]
        sealed_keys = {k for k, d in definitions.items() if d.encrypt_at_rest}
    try:
        with transaction.atomic():
            writes = bulk.plan_writes(account, plan.lines, cleaned, sealed_keys)
            bulk.write(writes)
            audit.record(AuditEventType.PEOPLE_IMPORTED, actor=actor, account_id=account.pk,
                         request=request, target_type="account", target_id=account.pk,
                         extra={**writes.counts, "columns": plan.columns})
    except IntegrityError:
        # Only a concurrent change can get here: plan_writes checked the unique keys.
        raise ValidationError("Another change to these people happened during the "
                              "import; nothing was imported. Try again.") from None
    return writes.counts


def _clean_or_raise(definitions, line: int, row: dict):
    builtin, custom, tags, errors = clean_row(definitions, row)
    if errors:
        detail = " ".join(m for ms in errors.values() for m in ms)
        raise ValidationError(f"Line {line}: {detail} Nothing was imported.")
    return builtin, custom, tags


def do_define_field(account, key: str, label: str, field_type: str, *, actor, options=(),
                    pd_class: str = "personal", encrypt_at_rest: bool = False,
                    request=None) -> FieldDefinition:
    """Define a custom field (needs ``people.write``)."""
    _authorize(actor, account.pk, "people.write")
    errors = {}
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", key or ""):
        errors["key"] = ["Use 1–40 lower-case letters, digits and underscores."]
    if field_type not in FIELD_TYPES:
        errors["type"] = [f"Choose one of: {', '.join(FIELD_TYPES)}."]
    if pd_class not in PD_CLASSES:
        errors["pd_class"] = [f"Choose one of: {', '.join(PD_CLASSES)}."]
    options = [str(o).strip() for o in options if str(o).strip()]
    if field_type == "select" and not options:
        errors["options"] = ["A select field needs at least one option."]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            definition = FieldDefinition.objects.create(
                account=account, key=key, label=(label or key)[:80], type=field_type,
                options=options, pd_class=pd_class, encrypt_at_rest=bool(encrypt_at_rest))
            audit.record(AuditEventType.FIELD_DEFINED, actor=actor, account_id=account.pk,
                         request=request, target_type="field", target_id=definition.pk,
                         extra={"key": key, "type": field_type, "pd_class": pd_class,
                                "encrypt_at_rest": bool(encrypt_at_rest)})
    except IntegrityError:
        raise ValidationError({"key": "A field with this key exists."}) from None
    return definition
