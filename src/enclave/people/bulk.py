"""The bulk write behind ``actions.do_import_people``: a whole file of cleaned rows in a
handful of queries, with exactly the result the one-row-at-a-time upsert would have.

How: the people the file can touch or collide with are exactly those holding one of the
file's emails or external ids, so they are fetched once (``= ANY`` queries on
PostgreSQL, chunked ``IN`` queries elsewhere). The rows are then replayed in file order
in memory — lookup by external id, then email; apply; check the two unique keys against
the in-memory owners (what the database's unique constraints would have said on that
row's save) — and finally the changes are written: new people by COPY on PostgreSQL
(``bulk_create`` elsewhere), changed people by ``bulk_update``, tags in set-based steps.

The caller owns the transaction (all-or-nothing) and the audit row. Only this module
and ``actions`` write people in bulk; nothing here checks permissions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import connection

from enclave.core import clock
from enclave.keys.fields import Sealed
from enclave.people.models import Person, PersonTag, Tag, sealed_values

CHUNK = 2000  # IN-list length and insert batch size
PROBE_CHUNK = 1000  # values per "= ANY" lookup (PostgreSQL)
UPDATE_BATCH = 500  # bulk_update builds one CASE per field: smaller batches stay fast
UPDATE_CHUNK = 5000  # rows per array-parameter UPDATE (PostgreSQL)
UNIQUE_MESSAGES = {"email": "Another person has this email address.",
                   "external_id": "Another person has this external id."}


class RowConflict(ValidationError):
    """A row would break a unique key (message names the file line)."""


# Columns a new person is written with (everything but archived_at, which starts NULL);
# TEXT_COLUMNS are never NULL and are escaped for COPY in one pass per row.
TEXT_COLUMNS = ("email", "first_name", "last_name", "phone", "company", "address",
                "country", "time_zone", "external_id", "consent")
NEW_COLUMNS = ("id", "account_id", "row_id", "created_at", "updated_at", "ip",
               "sealed_custom", "custom", *TEXT_COLUMNS)


class NewPerson:
    """A person the import will create: the model's fields and defaults without a model
    instance's cost (an import makes tens of thousands). The defaults are class
    attributes, so a new person holds only what its row sets; ``row_id`` is drawn by
    :func:`_create`. ``sealed_custom`` holds the plaintext JSON until :func:`write` seals
    it, as ``Person.save()`` would."""

    id = None
    email = first_name = last_name = phone = company = address = country = time_zone = ""
    external_id = ""
    ip = None
    consent = "unknown"
    custom: dict | None = None  # {} — never mutated in place (``_apply`` copies)
    row_id = None
    sealed_custom = None

    def __init__(self, account_id: int, now) -> None:
        self.account_id = account_id
        self.created_at = self.updated_at = now

    @property
    def pk(self):
        return self.id


@dataclass
class _Writes:
    created: list[Person] = field(default_factory=list)
    updated: dict[int, Person] = field(default_factory=dict)  # pk → person
    update_fields: set[str] = field(default_factory=set)
    resealed: dict[int, Person] = field(default_factory=dict)  # pk → person
    touched: dict[int, Person] = field(default_factory=dict)  # changed, in file order
    tags: list[tuple[Person, list[str]]] = field(default_factory=list)
    people: list = field(default_factory=list)  # every row's person, in file order
    # Set when a row takes an email / external id another row gave up: the updates must
    # then reach the database in file order (a unique index is checked row by row).
    ordered: bool = False
    released: set[tuple[str, str]] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=lambda: {"created": 0, "updated": 0})


def chunks(values: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _existing(account_id: int, rows: Iterable[tuple[dict, dict, list | None]]):
    """(by email, by external id): every person of the account holding a file value."""
    emails = sorted({b["email"] for b, _, _ in rows if b.get("email")})
    external_ids = sorted({b["external_id"] for b, _, _ in rows if b.get("external_id")})
    found: dict[int, Person] = {}
    for part in chunks(_matching_ids(account_id, emails, external_ids)):
        for person in Person.objects.filter(account_id=account_id, pk__in=part):
            found[person.pk] = person
    by_email = {p.email: p for p in found.values() if p.email}
    by_external_id = {p.external_id: p for p in found.values() if p.external_id}
    return by_email, by_external_id


def _matching_ids(account_id: int, emails: list[str], external_ids: list[str]) -> list[int]:
    """Ids of the account's people holding one of ``emails`` / ``external_ids``. On
    PostgreSQL ``= ANY(array)`` queries (one ``text[]`` literal parameter each: no
    2,000-placeholder statements to build and quote), one key per statement — an
    ``email = ANY … OR external_id = ANY …`` statement per chunk was tried and ran ~10×
    slower in the benchmark's full account (5.3 s instead of 0.5 s per 50,000 rows);
    elsewhere chunked ``IN`` queries."""
    if connection.vendor == "postgresql":
        found: set[int] = set()
        table = Person._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table} "  # noqa: S608 — model constant
                           "WHERE account_id = %s)", [account_id])
            if not cursor.fetchone()[0]:
                return []  # a first import into an empty account: nothing to probe
            for key, values in (("email", emails), ("external_id", external_ids)):
                # Chunks small enough that the planner probes the unique index per value
                # instead of scanning a large account.
                for part in chunks(values, PROBE_CHUNK):
                    cursor.execute(f"SELECT id FROM {table} "  # noqa: S608 — model constant and fixed column names
                                   f"WHERE account_id = %s AND {key} <> '' "
                                   f"AND {key} = ANY(%s::text[])", [account_id, _text_array(part)])
                    found.update(pk for (pk,) in cursor.fetchall())
        return sorted(found)
    ids: set[int] = set()
    for key, values in (("email", emails), ("external_id", external_ids)):
        for part in chunks(values):
            ids.update(Person.objects.filter(account_id=account_id, **{f"{key}__in": part})
                       .values_list("pk", flat=True))
    return sorted(ids)


# Inside a double-quoted array element only the backslash and the double quote are special.
_ARRAY_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


def _text_array(values: Sequence[str]) -> str:
    """``values`` as one PostgreSQL ``text[]`` literal, sent as a single (quoted) string
    parameter: psycopg adapting a list of a thousand strings element by element cost as
    much as the index probes themselves."""
    return "{" + ",".join(f'"{v.translate(_ARRAY_ESCAPES)}"' for v in values) + "}"


def _apply(person: Person, builtin: dict, custom: dict, sealed_keys: frozenset) -> tuple[
        list[str], bool]:
    """Set the row's values on ``person`` (as ``actions._apply`` does). Returns the
    changed field names and whether the sealed values changed (sealed values are only
    decrypted when the row carries a sealed field)."""
    changed = [k for k, v in builtin.items() if getattr(person, k) != v]
    for key in changed:
        setattr(person, key, builtin[key])
    merged = None
    sealed = sealed_values(person) if sealed_keys & custom.keys() else None
    resealed = False
    for key, value in custom.items():
        if key in sealed_keys:
            target = sealed
        else:
            merged = dict(person.custom or {}) if merged is None else merged
            target = merged
        if target.get(key) != value:
            changed.append(f"custom.{key}")
            resealed = resealed or key in sealed_keys
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    if merged is not None:
        person.custom = merged
    if resealed:
        person.sealed_custom = json.dumps(sealed, sort_keys=True) if sealed else None
    return changed, resealed


def _claim(writes: _Writes, owners: dict, key: str, old: str, person: Person,
           line: int) -> None:
    """Move ``person``'s unique ``key`` from ``old`` to its current value, or raise the
    error the unique constraint would have raised on this row."""
    new = getattr(person, key)
    if new == old:
        return
    holder = owners.get(new) if new else None
    if holder is not None and holder is not person:
        raise RowConflict(f"Line {line}: {UNIQUE_MESSAGES[key]} Nothing was imported.")
    if old and owners.get(old) is person:
        del owners[old]
        writes.released.add((key, old))
    if new:
        writes.ordered = writes.ordered or (key, new) in writes.released
        owners[new] = person


def plan_writes(account, lines: Sequence[int], cleaned: Sequence, sealed_keys) -> _Writes:
    """Replay the rows in file order against the current people; nothing is written.

    Raises RowConflict for the first row that breaks a unique key."""
    by_email, by_external_id = _existing(account.pk, cleaned)
    writes, now = _Writes(), clock.now()
    sealed_keys = frozenset(sealed_keys)
    for line, (builtin, custom, tags) in zip(lines, cleaned, strict=True):
        person = None
        if builtin.get("external_id"):
            person = by_external_id.get(builtin["external_id"])
        if person is None and builtin.get("email"):
            person = by_email.get(builtin["email"])
        created = person is None
        if created:
            person = NewPerson(account.pk, now)
            old_email = old_external_id = ""
            if custom:
                changed, resealed = _apply(person, builtin, custom, sealed_keys)
            else:  # the common case: the row's cleaned values are the new person's
                person.__dict__.update(builtin)
        else:
            old_email, old_external_id = person.email, person.external_id
            changed, resealed = _apply(person, builtin, custom, sealed_keys)
        # Email first: on a row breaking both, that is the constraint reported before.
        _claim(writes, by_email, "email", old_email, person, line)
        _claim(writes, by_external_id, "external_id", old_external_id, person, line)
        if created:
            writes.created.append(person)
        elif changed:
            person.updated_at = now
            writes.touched[person.pk] = person
            plain = [c for c in changed if not c.startswith("custom.")]
            custom_changed = any(c.startswith("custom.") and c[7:] not in sealed_keys
                                 for c in changed)
            if plain or custom_changed:
                writes.updated[person.pk] = person
                writes.update_fields.update(plain)
                if custom_changed:
                    writes.update_fields.add("custom")
            if resealed:
                writes.resealed[person.pk] = person
        writes.counts["created" if created else "updated"] += 1
        writes.people.append(person)
        if tags is not None:
            writes.tags.append((person, tags))
    return writes


def write(writes: _Writes, *, need_ids: bool = False) -> None:
    """Write a plan from :func:`plan_writes` (inside the caller's transaction); with
    ``need_ids`` every new person's id is set on it afterwards.

    Updates go first, so a new person may take an address an existing one gave up."""
    if writes.ordered:
        for person in writes.touched.values():
            person.save()  # file order; rare (keys moving between people)
    else:
        _write_updates(writes)
    if writes.created:
        _create(writes.created, need_ids=need_ids or bool(writes.tags))
    if writes.tags:
        set_tags_bulk(writes.tags)


def _create(people: list[NewPerson], *, need_ids: bool = True) -> None:
    """Insert the new people: COPY on PostgreSQL, bulk_create elsewhere. Their ids are
    set when ``need_ids`` (drawn from the table's sequence before the COPY); otherwise,
    on PostgreSQL, the COPY leaves them to the column default — the same sequence, in
    the same order, without a round trip of every id."""
    sealed_field = Person._meta.get_field("sealed_custom")
    for person, row_id in zip(people, _uuid4s(len(people)), strict=True):
        person.row_id = row_id
        if person.sealed_custom is not None:
            # The same keyring ciphertext, bound to the row, that save() would store.
            person.sealed_custom = str(sealed_field.seal(person, person.sealed_custom))
    if connection.vendor != "postgresql":
        instances = [Person(**{c: getattr(p, c) for c in NEW_COLUMNS if c != "id"})
                     for p in people]
        for instance in instances:
            instance.custom = instance.custom or {}
            if instance.sealed_custom is not None:  # already sealed: keep the ciphertext
                instance.sealed_custom = Sealed(instance.sealed_custom)
        Person.objects.bulk_create(instances, batch_size=CHUNK)
        for person, instance in zip(people, instances, strict=True):
            person.id = instance.pk
        return
    table = Person._meta.db_table
    columns = NEW_COLUMNS if need_ids else NEW_COLUMNS[1:]
    with connection.cursor() as cursor:
        if need_ids:
            cursor.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "  # noqa: S608 — model constant
                           "FROM generate_series(1, %s)", [len(people)])
            for person, (pk,) in zip(people, cursor.fetchall(), strict=True):
                person.id = pk
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            stamps: dict = {}
            for part in chunks(people):
                if need_ids:
                    copy.write("".join(f"{p.id}\t{_copy_line(p, stamps)}" for p in part))
                else:
                    copy.write("".join(_copy_line(p, stamps) for p in part))


def _uuid4s(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as text — what ``str(uuid.uuid4())`` gives,
    from one ``os.urandom`` call instead of one per UUID."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = bytes(b & 0x0F | 0x40 for b in raw[6::16])  # version 4
    raw[8::16] = bytes(b & 0x3F | 0x80 for b in raw[8::16])  # RFC 4122 variant
    h = raw.hex()
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-"
            f"{h[i + 20:i + 32]}" for i in range(0, 32 * count, 32)]


# COPY text format: backslash, tab, newline and carriage return are escaped; \N is NULL.
# The text columns of a row are joined with NUL (which no value can hold: the CSV reader
# and PostgreSQL both refuse it) and escaped by one translate, NUL becoming the tab.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r",
                               "\0": "\t"})


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    return str(value).translate(_COPY_ESCAPES)


def _copy_line(p: NewPerson, stamps: dict) -> str:
    """One COPY line of ``p``: every column of NEW_COLUMNS but the id."""
    created, updated = p.created_at, p.updated_at
    created = stamps.get(created) or stamps.setdefault(created, created.isoformat())
    updated = stamps.get(updated) or stamps.setdefault(updated, updated.isoformat())
    texts = "\0".join((p.email, p.first_name, p.last_name, p.phone, p.company, p.address,
                       p.country, p.time_zone, p.external_id, p.consent))
    if texts.count("\0") != len(TEXT_COLUMNS) - 1:
        raise ValidationError("A value holds a NUL character; nothing was imported.")
    ip, sealed, custom = p.ip, p.sealed_custom, p.custom
    return (f"{p.account_id}\t{p.row_id}\t{created}\t{updated}\t"
            f"{_NULL if ip is None else _copy_text(ip)}\t"
            f"{_NULL if sealed is None else _copy_text(sealed)}\t"
            f"{_copy_text(json.dumps(custom)) if custom else '{}'}\t"
            f"{texts.translate(_COPY_ESCAPES)}\n")


_NULL = "\\N"


# How each updatable column travels in the PostgreSQL update: array type, and the cast
# from that array's element to the column.
_UPDATE_TYPES = {**dict.fromkeys(TEXT_COLUMNS, ("text[]", "")), "ip": ("text[]", "::inet"),
                 "custom": ("text[]", "::jsonb"), "updated_at": ("timestamptz[]", "")}


def _write_updates(writes: _Writes) -> None:
    if writes.updated:
        fields = sorted(writes.update_fields | {"updated_at"})
        people = list(writes.updated.values())
        if connection.vendor == "postgresql":
            _update_from_arrays(people, fields)
        else:
            Person.objects.bulk_update(people, fields, batch_size=UPDATE_BATCH)
    sealed_field = Person._meta.get_field("sealed_custom")
    for person in writes.resealed.values():
        # bulk_update cannot encrypt (it reads values through the decrypting
        # descriptor), so each changed sealed value is sealed and written on its own.
        plain = person.__dict__.get("sealed_custom")
        value = None if plain is None else sealed_field.seal(person, plain)
        Person.objects.filter(pk=person.pk).update(sealed_custom=value,
                                                   updated_at=person.updated_at)


def _update_from_arrays(people: list[Person], fields: list[str]) -> None:
    """``UPDATE … FROM unnest(arrays)``: one statement per chunk, one array parameter per
    column (``bulk_update``'s ``CASE WHEN`` per row and column ran at ~1,000 rows/s)."""
    table = Person._meta.db_table
    columns = ", ".join(fields)
    unnest = ", ".join(["%s::bigint[]"] + [f"%s::{_UPDATE_TYPES[f][0]}" for f in fields])
    sets = ", ".join(f"{f} = v.{f}{_UPDATE_TYPES[f][1]}" for f in fields)
    sql = (f"UPDATE {table} AS p SET {sets} FROM unnest({unnest}) "  # noqa: S608 — model constants only
           f"AS v(id, {columns}) WHERE p.id = v.id")
    with connection.cursor() as cursor:
        for part in chunks(people, UPDATE_CHUNK):
            params = [[p.pk for p in part]]
            for name in fields:
                values = [getattr(p, name) for p in part]
                if name == "custom":
                    values = [json.dumps(v or {}) for v in values]
                params.append(values)
            cursor.execute(sql, params)


def set_tags_bulk(assignments: Sequence[tuple[Person, list[str]]]) -> None:
    """Give each (saved) person exactly the named tags of its account, creating tags that
    do not exist yet — ``actions._set_tags`` for many people in a few queries."""
    account_id = assignments[0][0].account_id
    names = sorted({n for _, tags in assignments for n in tags})
    tag_ids: dict[str, int] = {}
    for part in chunks(names):
        tag_ids.update(Tag.objects.filter(account_id=account_id, name__in=part)
                       .values_list("name", "pk"))
    missing = [Tag(account_id=account_id, name=n) for n in names if n not in tag_ids]
    if missing:
        Tag.objects.bulk_create(missing, batch_size=CHUNK)
        for part in chunks([t.name for t in missing]):
            tag_ids.update(Tag.objects.filter(account_id=account_id, name__in=part)
                           .values_list("name", "pk"))
    wanted = {p.pk: {tag_ids[n] for n in tags} for p, tags in assignments}
    have: dict[int, dict[int, int]] = {}
    for part in chunks(list(wanted)):
        for link_id, person_id, tag_id in PersonTag.objects.filter(
                person_id__in=part).values_list("pk", "person_id", "tag_id"):
            have.setdefault(person_id, {})[tag_id] = link_id
    stale = [link for pk, links in have.items() for tag, link in links.items()
             if tag not in wanted[pk]]
    for part in chunks(stale):
        PersonTag.objects.filter(pk__in=part).delete()
    PersonTag.objects.bulk_create(
        [PersonTag(person_id=pk, tag_id=tag) for pk, tags in wanted.items()
         for tag in sorted(tags) if tag not in have.get(pk, {})], batch_size=CHUNK)
