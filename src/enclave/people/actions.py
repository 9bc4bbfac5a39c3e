"""People state changes. One transaction and one audit row each; audit rows name the
person by id and the changed fields by name — never a personal value."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import zoneinfo
from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_ipv46_address
from django.db import IntegrityError, connection, transaction

from enclave.access import personal_data
from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize, authorize_system
from enclave.backups import actions as backup_actions
from enclave.billing import entitlements
from enclave.core import audit, clock
from enclave.core.models import AuditEventType
from enclave.people import bulk, locks, visibility
from enclave.people.models import (
    CONSENT_CHOICES,
    FIELD_TYPES,
    PD_CLASSES,
    FieldDefinition,
    PendingImport,
    Person,
    PersonTag,
    Tag,
    sealed_values,
)

TEXT_LIMITS = {"email": 254, "first_name": 100, "last_name": 100, "phone": 32,
               "company": 200, "address": 500, "external_id": 100}
EDITABLE = (*TEXT_LIMITS, "country", "time_zone", "ip", "consent")
PHONE_RE = re.compile(r"^\+?[0-9 ()\-.]{3,31}$")
REASON_MAX = 500
CUSTOM_TEXT_MAX = 1000
TAG_MAX = 50


P = Permission


# --- validation (pure; raises ValidationError keyed by field) ---

# A strict subset of what Django's validate_email accepts (plain ASCII dot-atoms with a
# letters-only TLD): a match skips the slower full validator, anything else gets it.
_SIMPLE_EMAIL = re.compile(r"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*@"
                           r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+"
                           r"[A-Za-z]{2,63}\Z")
_COUNTRY_RE = re.compile(r"[A-Za-z]{2}")
# The addresses the API accepts and documents (an OpenAPI "pattern"; the API checks it
# before Django's validate_email): Django's own rules, less what no pattern can say
# exactly (quoted local parts, address literals) — a dot-atom before the @, a host name
# (Unicode allowed) whose labels do not start or end with a hyphen, and a TLD of two or
# more letters or an xn-- label. Django accepts every address it matches (tests).
_ATOM = r"[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+"
_LABEL_CHAR = r"A-Za-z0-9\u00a1-\uffff"
_LABEL = rf"[{_LABEL_CHAR}]([{_LABEL_CHAR}-]{{0,61}}[{_LABEL_CHAR}])?"
_TLD_CHAR = r"A-Za-z\u00a1-\uffff"
_TLD = rf"([{_TLD_CHAR}]([{_TLD_CHAR}-]{{0,61}}[{_TLD_CHAR}])|xn--[A-Za-z0-9]{{1,59}})"
# The part before the @ (also a broadcast's From address: enclave.messaging).
DOT_ATOM = rf"{_ATOM}(\.{_ATOM})*"
EMAIL_PATTERN = rf"^{DOT_ATOM}@{_LABEL}(\.{_LABEL})*\.{_TLD}$"


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


@functools.cache
def time_zone_names() -> tuple[str, ...]:
    """The IANA time-zone names a person may have, sorted: the locked ``tzdata``
    package's (never the host's zoneinfo, which may be older or hold other files, so
    every host accepts the same names), the Area/Location names and UTC — not the legacy
    aliases ("EST5EDT") nor the database's internal files."""
    from importlib import resources

    names = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return tuple(sorted(name for name in names.split() if "/" in name or name == "UTC"))


def time_zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The zone a person's ``time_zone`` names, with the locked ``tzdata`` package's
    rules (``zoneinfo.ZoneInfo`` would read the host's database first, whose daylight
    saving may differ); None for anything that is not one of :func:`time_zone_names`
    (blank, or a value restored from elsewhere)."""
    return _load_zone(name) if name in _zone_set() else None


@functools.cache
def _load_zone(name: str) -> zoneinfo.ZoneInfo:
    from importlib import resources

    path = resources.files("tzdata.zoneinfo")
    for part in name.split("/"):
        path = path.joinpath(part)
    with path.open("rb") as file:
        return zoneinfo.ZoneInfo.from_file(file, key=name)


TIME_ZONE_RULE = 'An IANA time zone, spelled as the tz database does: "Europe/Paris".'


def clean_time_zone(value: str) -> str:
    """``value`` when it is an IANA time-zone name ("" clears); ValueError otherwise."""
    if value and value not in _zone_set():
        raise ValueError(TIME_ZONE_RULE)
    return value


@functools.cache
def _zone_set() -> frozenset[str]:
    return frozenset(time_zone_names())


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
                     "time_zone": clean_time_zone,
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


# --- erasure hooks: apps above people that must act when a person is erased ---
_ERASURE_HOOKS: list = []


def register_erasure_hook(hook) -> None:
    """``hook(account_id, email)`` runs inside every erasure's transaction, before the
    person's rows go (audience: the address joins the suppression list)."""
    if hook not in _ERASURE_HOOKS:
        _ERASURE_HOOKS.append(hook)


# --- import destinations: where else an import may put everyone its file names ---
_IMPORT_DESTINATIONS: list = []


def register_import_destination(destination) -> None:
    """An app above people offering somewhere to put an import's people (audience: its
    static lists). ``destination.choices(actor)`` → ``[(value, label)]`` the actor may
    pick; ``destination.adder(actor, value, request=)`` → a callable taking the sorted
    ids of everyone in the file, run inside the import's transaction (it authorizes and
    audits its own change; ValidationError or Http404 when ``value`` is unusable)."""
    if destination not in _IMPORT_DESTINATIONS:
        _IMPORT_DESTINATIONS.append(destination)


def import_destinations(actor: Principal) -> list[tuple[str, str]]:
    """Every destination ``actor`` may add an import's people to, as (value, label)."""
    return [choice for d in _IMPORT_DESTINATIONS for choice in d.choices(actor)]


def import_destination(actor: Principal, value: str, *, request=None):
    """The adder for the chosen ``value`` (see :func:`register_import_destination`);
    ValidationError when no destination knows it."""
    for destination in _IMPORT_DESTINATIONS:
        if any(v == value for v, _ in destination.choices(actor)):
            return destination.adder(actor, value, request=request)
    raise ValidationError({"list": "Choose one of the lists offered."})


# --- actions ---

def do_create_person(account, data: dict, *, actor: Principal, request=None) -> Person:
    """Create a person in ``account`` (needs ``people.write``)."""
    authorize(actor, P.PEOPLE_WRITE, account_id=account.pk)
    builtin, custom, tags = clean_person_data(account.pk, data)
    try:
        with transaction.atomic():
            entitlements.check(account.pk, entitlements.PEOPLE)
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


def do_update_person(person: Person, data: dict, *, actor: Principal, request=None) -> Person:
    """Change the given fields (needs ``people.write``); no change → no audit row."""
    authorize(actor, P.PEOPLE_WRITE, account_id=person.account_id)
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


def do_upsert_person(account, data: dict, *, actor: Principal, request=None) -> tuple[Person, bool]:
    """Update the person with this ``external_id`` (else this ``email``) or create one.

    Returns (person, created). Needs ``people.write``.
    """
    authorize(actor, P.PEOPLE_WRITE, account_id=account.pk)
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


def clean_email_address(value) -> str:
    """``value`` as a stored address (stripped, lower-cased); ValidationError keyed
    ``email`` when it is not one (empty included)."""
    try:
        email = _clean_email(str(value or "").strip())
    except ValueError as exc:
        raise ValidationError({"email": str(exc)}) from None
    if not email:
        raise ValidationError({"email": "Enter your email address."})
    return email


def do_capture_person(account, email: str, *, source: str, actor=None,
                      request=None) -> Person:
    """The person of ``account`` with this address, created when new — for what people
    do themselves (a subscribe form), so a system action (``actor`` None). Raises
    ValidationError for an unusable address. Audited as created, naming the source."""
    authorize_system(actor)
    email = clean_email_address(email)
    with transaction.atomic():
        existing = Person.objects.filter(account=account, email=email).first()
        if existing is not None:
            return existing
        # The plan's people limit (raises PlanLimitReached; the caller decides what the
        # person in front of the form is told).
        entitlements.check(account.pk, entitlements.PEOPLE)
        try:
            with transaction.atomic():
                person = Person.objects.create(account=account, email=email)
        except IntegrityError:  # created meanwhile by another request
            return Person.objects.get(account=account, email=email)
        audit.record(AuditEventType.PERSON_CREATED, actor=None, account_id=account.pk,
                     request=request, target_type="person", target_id=person.pk,
                     extra={"fields": ["email"], "source": source})
    return person


def do_archive_person(person: Person, *, actor: Principal, request=None) -> Person:
    """Archive (hide from lists; data kept). Needs ``people.write``."""
    authorize(actor, P.PEOPLE_WRITE, account_id=person.account_id)
    with transaction.atomic():
        locked = Person.objects.select_for_update().get(pk=person.pk)
        if locked.archived_at is not None:
            return locked
        # updated_at too: segment membership is refreshed for people changed since.
        locked.archived_at = locked.updated_at = clock.now()
        locked.save(update_fields=["archived_at", "updated_at"])
        audit.record(AuditEventType.PERSON_ARCHIVED, actor=actor, account_id=locked.account_id,
                     request=request, target_type="person", target_id=locked.pk)
    return locked


def do_erase_person(person: Person, *, actor: Principal, request=None) -> None:
    """Erase a person (needs ``people.erase``): everything the personal-data registry
    links to them — their row, tags, events, pending imports of their account — is
    deleted, and every audit row about them scrubbed (``extra_data`` emptied,
    ``scrubbed`` set: the only change the append-only audit table allows). An erasure
    tombstone (ids only) is recorded by the backups app, outside every backup, so each
    later restore erases them again with the same registry-derived steps."""
    authorize(actor, P.PEOPLE_ERASE, account_id=person.account_id)
    account_id, person_id = person.account_id, person.pk
    with transaction.atomic():
        locks.hold_for_deletion(account_id)  # before the person's row lock (people.locks)
        locked = Person.objects.select_for_update().filter(pk=person_id,
                                                           account_id=account_id).first()
        if locked is None:
            return
        for hook in _ERASURE_HOOKS:
            hook(account_id, locked.email)
        row_key = personal_data.row_key_of(personal_data.PERSON, locked)
        touched = personal_data.erase_subjects(connection, personal_data.PERSON,
                                               [(account_id, person_id, row_key)])
        backup_actions.do_record_erasure(personal_data.PERSON, person_id,
                                         account_id=account_id, row_key=row_key, actor=actor)
        audit.record(AuditEventType.PERSON_ERASED, actor=actor, account_id=account_id,
                     request=request, target_type="person", target_id=person_id,
                     extra={"rows_erased": touched})


def do_reveal_value(person: Person, field: str, reason: str, *, actor: Principal,
                    request=None) -> str:
    """Show one masked value in full to a member with ``people.unmask``; the reason is
    required and audited (the value itself is not)."""
    authorize(actor, P.PEOPLE_UNMASK, account_id=person.account_id)
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


def do_record_export(account, *, columns, filters, actor: Principal, request=None) -> None:
    """Audit a people export (needs ``people.export``): which columns, which filter names
    — never the filter values, which may be personal data."""
    authorize(actor, P.PEOPLE_EXPORT, account_id=account.pk)
    with transaction.atomic():
        audit.record(AuditEventType.PEOPLE_EXPORTED, actor=actor, account_id=account.pk,
                     request=request, target_type="account", target_id=account.pk,
                     extra={"columns": list(columns), "filters": list(filters)})


IMPORT_HOLD = dt.timedelta(hours=1)


def _require_visible_columns(actor: Principal, columns, account_id: int) -> None:
    definitions = list(FieldDefinition.objects.filter(account_id=account_id))
    hidden = [c for c in columns if c != "tags" and visibility.field_level(
        actor.perms, c, definitions) != visibility.VISIBLE]
    if hidden:
        raise ValidationError(f"Your role cannot import column(s) {', '.join(hidden)}: it "
                              "sees them masked or not at all. Nothing was imported.")


def do_stage_import(account, data: str, plan, *, actor: Principal,
                    request=None) -> PendingImport:
    """Hold a checked CSV file (``plan`` without errors) until the member confirms it:
    encrypted by the keyring, for this member and account only, for ``IMPORT_HOLD``.
    Replaces the member's earlier held file. Needs ``people.write``."""
    authorize(actor, P.PEOPLE_WRITE, account_id=account.pk)
    if not plan.ok:
        raise ValidationError("The file has errors; nothing was kept.")
    _require_visible_columns(actor, plan.columns, account.pk)
    now = clock.now()
    with transaction.atomic():
        PendingImport.objects.filter(account=account, member_id=actor.member_id).delete()
        pending = PendingImport.objects.create(
            account=account, member_id=actor.member_id, data=data,
            columns=list(plan.columns), rows=len(plan.rows), created_at=now,
            expires_at=now + IMPORT_HOLD)
        audit.record(AuditEventType.PEOPLE_IMPORT_STAGED, actor=actor, account_id=account.pk,
                     request=request, target_type="import", target_id=pending.pk,
                     extra={"rows": len(plan.rows), "columns": plan.columns})
    return pending


def held_import(account, *, actor: Principal) -> PendingImport | None:
    """The member's unexpired held file in ``account``, or None."""
    return PendingImport.objects.filter(account=account, member_id=actor.member_id,
                                        expires_at__gt=clock.now()).first()


def do_discard_import(account, *, actor: Principal, request=None) -> int:
    """Cancel: delete the member's held file(s) in ``account``. Returns how many."""
    authorize(actor, P.PEOPLE_WRITE, account_id=account.pk)
    with transaction.atomic():
        deleted = PendingImport.objects.filter(account=account,
                                               member_id=actor.member_id).delete()[0]
        if deleted:
            audit.record(AuditEventType.PEOPLE_IMPORT_DISCARDED, actor=actor,
                         account_id=account.pk, request=request, target_type="account",
                         target_id=account.pk, extra={"held_files": deleted})
    return deleted


def do_purge_expired_imports(*, actor=None) -> int:
    """System job: delete every held file past its hold time. Returns how many."""
    authorize_system(actor)
    with transaction.atomic():
        deleted = PendingImport.objects.filter(expires_at__lte=clock.now()).delete()[0]
        if deleted:
            audit.record(AuditEventType.PEOPLE_IMPORT_DISCARDED, actor=actor,
                         extra={"held_files": deleted, "reason": "expired"})
    return deleted


def do_import_people(account, plan, *, actor: Principal, request=None,
                     held: PendingImport | None = None, then=None) -> dict:
    """Write a validated ``importer.ImportPlan`` in ONE transaction: every row is
    upserted (external id, then email) or nothing is. Needs ``people.write`` and every
    column visible to the actor in full (like the edit form). ``held``: the confirmed
    held file, deleted in the same transaction. ``then``: an adder from
    :func:`import_destination`, given the ids of everyone the file names (created or
    updated) inside the same transaction — if it fails, nothing is imported.

    The rows are written in bulk (``people.bulk``) with the same outcome as upserting
    them one by one in file order. Returns {"created": n, "updated": n}. Raises
    ValidationError when the plan has errors or a row breaks a unique key on write
    ("Line N: ..."; the whole file is rolled back).
    """
    authorize(actor, P.PEOPLE_WRITE, account_id=account.pk)
    if not plan.ok:
        raise ValidationError("The file has errors; nothing was imported.")
    _require_visible_columns(actor, plan.columns, account.pk)
    cleaned, sealed_keys = plan.cleaned, plan.sealed_keys
    if len(cleaned) != len(plan.rows):  # a plan built by hand: clean it here
        definitions = {d.key: d for d in FieldDefinition.objects.filter(account_id=account.pk)}
        cleaned = [_clean_or_raise(definitions, line, row)
                   for line, row in zip(plan.lines, plan.rows, strict=True)]
        sealed_keys = {k for k, d in definitions.items() if d.encrypt_at_rest}
    try:
        with transaction.atomic():
            if held is not None and not PendingImport.objects.filter(
                    pk=held.pk, account=account, member_id=actor.member_id).delete()[0]:
                raise ValidationError("Nothing to import: upload the file again.")
            # The plan's people limit: the account is held before any person is (the
            # order ingest takes them in too), the whole file refused when it does not fit.
            room = entitlements.room(account.pk, entitlements.PEOPLE)
            writes = bulk.plan_writes(account, plan.lines, cleaned, sealed_keys)
            if room is not None and writes.counts["created"] > room:
                entitlements.check(account.pk, entitlements.PEOPLE, writes.counts["created"])
            bulk.write(writes, need_ids=then is not None)
            audit.record(AuditEventType.PEOPLE_IMPORTED, actor=actor, account_id=account.pk,
                         request=request, target_type="account", target_id=account.pk,
                         extra={**writes.counts, "columns": plan.columns})
            if then is not None:
                then(sorted({person.pk for person in writes.people}))
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


def do_define_field(account, key: str, label: str, field_type: str, *, actor: Principal, options=(),
                    pd_class: str = "personal", encrypt_at_rest: bool = False,
                    request=None) -> FieldDefinition:
    """Define a custom field (needs ``people.write``)."""
    authorize(actor, P.PEOPLE_WRITE, account_id=account.pk)
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
