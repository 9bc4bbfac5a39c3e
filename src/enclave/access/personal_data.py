"""The one personal-data registry: where personal data lives and how each piece is treated.

Every concrete field of every Enclave model is classified here (a test fails when a
model gains a field this registry does not list). For each field:

* ``cls`` — ``none`` (not personal), ``personal``, ``sensitive`` (the visibility table's
  classes: ``people.visibility.level``) or ``secret`` (credentials and their hashes:
  never shown, never logged);
* ``anonymise`` — what an anonymised restore (``enclave backup restore --anonymize``)
  writes instead: ``keep``, ``blank`` (''), ``null``, ``email`` (a unique address under
  .invalid), ``json`` (an empty JSON object), ``unusable`` (an unusable password hash);
* ``logs`` — whether logs may carry the value in clear (``False``: the log redaction
  policy removes it by key, see :func:`log_redacted_names`).

For each model holding data about a subject (a ``person`` of the marketing database, or
a ``member`` of the team), :class:`Link` says how erasing that subject reaches the model:
rows are ``delete``d, or ``scrub``bed (personal columns set to their anonymised values).
Erasure (``people.actions.do_erase_person``) and the re-application of erasure
tombstones to every restored backup (``enclave.backups``) both run :func:`erasure_steps`,
so the two can never disagree. Visibility of a person's built-in fields
(``people.visibility.FIELD_CLASSES``), backup anonymisation and log redaction are
derived from the same table.

This module is data plus small pure functions over it; it imports no Enclave app.
"""

from __future__ import annotations

from dataclasses import dataclass

NONE, PERSONAL, SENSITIVE, SECRET = "none", "personal", "sensitive", "secret"
CLASSES = (NONE, PERSONAL, SENSITIVE, SECRET)
ANONYMISERS = {
    "keep": None,
    "blank": "''",
    "null": "NULL",
    "email": "'masked-' || id || '@masked.invalid'",
    "json": "'{}'",
    "unusable": "'!'",
}


@dataclass(frozen=True)
class Field:
    cls: str = NONE
    anonymise: str = "keep"
    logs: bool = True

    def __post_init__(self) -> None:
        if self.cls not in CLASSES:
            raise ValueError(f"unknown personal-data class {self.cls!r}")
        if self.anonymise not in ANONYMISERS:
            raise ValueError(f"unknown anonymiser {self.anonymise!r}")
        if self.cls in (PERSONAL, SENSITIVE) and self.anonymise == "keep":
            raise ValueError("personal data must be anonymised in restored backups")
        if self.cls != NONE and self.logs:
            raise ValueError("personal data and secrets never reach the logs")


@dataclass(frozen=True)
class Link:
    """How erasing a ``subject`` reaches this model's rows.

    ``column``: the column holding the subject's id (``id`` for the subject's own table),
    or the subject's account id when ``by_account`` (e.g. pending uploads that may hold
    any person of the account). ``where``: a fixed extra SQL condition. ``action``:
    ``delete`` the rows, or ``scrub`` them (set ``scrub`` assignments; the row stays).
    """

    subject: str
    column: str
    action: str = "delete"
    by_account: bool = False
    where: str = ""
    scrub: str = ""


@dataclass(frozen=True)
class Model:
    label: str
    fields: dict[str, Field]
    links: tuple[Link, ...] = ()
    # Erasing rows of this table needs the audit log's scrub mode (core.auditlog).
    audit_table: bool = False


def plain(*names: str) -> dict[str, Field]:
    """Fields that are not personal data."""
    return {n: Field() for n in names}


def personal(anonymise: str = "blank") -> Field:
    return Field(PERSONAL, anonymise, logs=False)


def sensitive(anonymise: str = "blank") -> Field:
    return Field(SENSITIVE, anonymise, logs=False)


def secret(anonymise: str = "keep") -> Field:
    return Field(SECRET, anonymise, logs=False)


PERSON, MEMBER = "person", "member"
SUBJECTS = (PERSON, MEMBER)
# Each subject's own table and the column that tells one row from a later row given the
# same id (ids are reused after a restore resets a sequence): a tombstone names both, so
# re-applying it never erases a newer, innocent subject that happens to hold the id.
SUBJECT_ROWS: dict[str, tuple[str, str | None]] = {
    PERSON: ("people.Person", "row_id"),
    MEMBER: ("identity.Member", None),
}

MODELS: tuple[Model, ...] = (
    # --- people: the marketing contacts ---
    Model("people.Person", {
        **plain("id", "account", "company", "country", "time_zone", "external_id", "consent",
                "row_id",
                "created_at", "updated_at", "archived_at"),
        "email": personal("email"),
        "first_name": personal(),
        "last_name": personal(),
        "phone": personal(),
        "address": sensitive(),
        "ip": sensitive("null"),
        # Custom values: each field's class is its FieldDefinition.pd_class (per account);
        # the column as a whole is treated as personal.
        "custom": personal("json"),
        "sealed_custom": personal("null"),
    }, links=(Link(PERSON, "id"),)),
    Model("people.PersonTag", plain("id", "person", "tag"), links=(Link(PERSON, "person_id"),)),
    Model("people.Tag", plain("id", "account", "name")),
    Model("people.FieldDefinition", plain("id", "account", "key", "label", "type", "options",
                                          "pd_class", "encrypt_at_rest")),
    Model("people.PendingImport", {
        **plain("id", "account", "member", "row_id", "columns", "rows", "created_at",
                "expires_at"),
        "data": personal("null"),
    }, links=(Link(PERSON, "account_id", by_account=True),)),
    # --- events: properties are free-form and may carry anything about the person ---
    Model("events.Event", {
        **plain("id", "account", "person", "type", "name", "message_id", "occurred_at",
                "received_at", "key_public_id"),
        "properties": personal("json"),
        # The tracking spec's visitor id (a cookie's) and the call's context (IP, user
        # agent, page...).
        "anonymous_id": personal(),
        "context": personal("json"),
    }, links=(Link(PERSON, "person_id"),)),
    Model("events.AnonymousId", {
        **plain("id", "account", "person", "created_at"),
        "anonymous_id": personal(),
    }, links=(Link(PERSON, "person_id"),)),
    # --- audience: segment membership and its history are about a person ---
    # A rule's values may name someone ("email equals ..."): the tree is personal, shown
    # to a role with its values masked where that role cannot see the field in full.
    Model("audience.Segment", {
        **plain("id", "account", "name", "kind", "time_dependent", "created_by",
                "created_at", "updated_at", "refreshed_at"),
        "rules": personal("json"),
    }),
    Model("audience.SegmentMember", plain("id", "segment", "person", "since"),
          links=(Link(PERSON, "person_id"),)),
    Model("audience.SegmentTransition", plain("id", "segment", "person", "kind", "at"),
          links=(Link(PERSON, "person_id"),)),
    Model("audience.Topic", plain("id", "account", "key", "name", "description",
                                  "double_opt_in", "consent_text", "consent_version",
                                  "public_id", "created_at")),
    Model("audience.Subscription", plain("id", "person", "topic", "status", "changed_at"),
          links=(Link(PERSON, "person_id"),)),
    # The proof of consent; the address it came from is sensitive.
    Model("audience.ConsentRecord", {
        **plain("id", "account", "person", "topic", "status", "method", "consent_version",
                "at"),
        "ip": sensitive("null"),
    }, links=(Link(PERSON, "person_id"),)),
    # A keyed MAC of an address: pseudonymous, still about someone.
    Model("audience.Suppression", {
        **plain("id", "account", "mac_version", "reason", "created_at"),
        "email_mac": personal(),
    }),
    # --- messaging: templates are the team's writing, about nobody in particular ---
    Model("messaging.EmailTemplate", plain("id", "account", "name", "kind", "subject",
                                           "source", "compiled", "created_by",
                                           "created_at", "updated_at")),
    Model("messaging.SenderDomain", plain("id", "account", "domain", "state",
                                          "check_detail", "checked_at", "verified_at",
                                          "created_at", "max_per_second", "next_slot_at")),
    # A DKIM private key signs as the domain: a secret, sealed by the keyring.
    Model("messaging.DkimKey", {
        **plain("id", "domain", "selector", "state", "public_key", "row_id", "created_at",
                "activated_at", "retired_at"),
        "private_key": secret("null"),
    }),
    Model("messaging.Broadcast", plain("id", "account", "name", "template", "sender",
                                       "from_local", "from_name", "topics", "segments",
                                       "state", "created_by", "created_at", "send_at",
                                       "problem", "queued_at", "recipients",
                                       "finished_at", "track_opens", "track_clicks",
                                       "tracked_links", "tracking_key_version",
                                       "local_at", "local_offset")),
    # Who a broadcast goes to: about a person (ids only; erasure deletes the rows).
    Model("messaging.OutboxMessage", plain("id", "broadcast", "person", "state",
                                           "created_at", "attempts", "claimed_at",
                                           "lease_id",
                                           "next_attempt_at", "sent_at", "message_id",
                                           "detail"),
          links=(Link(PERSON, "person_id"),)),
    # A transactional message: to a person (erasure deletes the row) or to an address
    # that is nobody in the account (sealed, cleared with the variables once final).
    # The client's idempotency key and request are kept as keyed MACs only.
    Model("messaging.TransactionalMessage", {
        **plain("id", "account", "template", "sender", "from_local", "from_name",
                "person", "mac_version", "row_id", "state", "created_at", "attempts",
                "claimed_at", "lease_id", "next_attempt_at", "sent_at", "message_id",
                "detail"),
        "to_address": personal("null"),
        "data": personal("null"),
        "key_mac": secret(),
        "request_mac": secret(),
    }, links=(Link(PERSON, "person_id"),)),
    # What a provider reported about a sent message: ids and a kind; the person's events
    # go with them.
    Model("messaging.DeliveryEvent", plain("id", "account", "person", "broadcast",
                                           "message", "kind", "esp", "event_id",
                                           "occurred_at", "recorded_at"),
          links=(Link(PERSON, "person_id"),)),
    # A captured message holds the whole mail as sent to the person: personal, sealed.
    Model("messaging.CapturedMessage", {
        **plain("id", "account", "broadcast", "person", "row_id", "created_at"),
        "raw": personal("null"),
    }, links=(Link(PERSON, "person_id"),)),
    Model("events.MessageId", plain("id", "account", "message_id", "received_at")),
    # --- outgoing webhooks ---
    # An endpoint: the account's own receiver. Its URL may carry the receiver's token
    # (a secret: never in logs or audit rows; blanked in an anonymised restore, so a
    # restored copy never calls production receivers); its signing secrets are sealed.
    Model("webhooks.WebhookEndpoint", {
        **plain("id", "account", "description", "event_types", "role_ceiling", "state",
                "disabled_reason", "row_id", "previous_until", "created_by", "created_at",
                "updated_at", "leased_until", "lease_id"),
        "url": secret("blank"),
        "secret": secret(),
        "previous_secret": secret(),
    }),
    # A delivery stores its event as ids (the person's values are read and formatted
    # when the request is made); the rows about a person go with them.
    Model("webhooks.WebhookDelivery", {
        **plain("id", "endpoint", "event_type", "message_id", "person_id", "created_at",
                "state", "attempts", "next_attempt_at", "last_attempt_at", "last_status",
                "last_detail", "payload"),
    }, links=(Link(PERSON, "person_id"),)),
    # --- billing: Stripe's ids, the plan and the status of an account (a company's
    # workspace) — never anything from a card (Checkout and the portal are Stripe's) ---
    Model("billing.BillingAccount", plain(
        "id", "account", "customer_id", "subscription_id", "price_id", "plan_key", "status",
        "current_period_end", "cancel_at_period_end", "past_due_since", "synced_at",
        "created_at")),
    Model("billing.StripeEvent", plain("id", "event_id", "event_type", "account",
                                       "received_at", "signed_at")),
    # --- the audit log: ids only, never values; an erased person's rows are scrubbed ---
    Model("core.AuditEvent", {
        **plain("id", "created_at", "event_type", "account_id", "actor", "target_type",
                "target_id", "trace_id", "extra_data", "scrubbed"),
        # The acting member's address when they acted (kept for security investigations,
        # never in clear in logs; masked in anonymised restores).
        "ip": sensitive("null"),
    }, links=(Link(PERSON, "target_id", action="scrub", where="target_type = 'person'",
                   scrub="extra_data = '{}', scrubbed = TRUE"),),
        audit_table=True),
    Model("core.CredentialExposure", {
        **plain("id", "created_at", "kind", "fingerprint", "path"),
        "ip": sensitive("null"),
    }),
    Model("core.DeploymentStamp", plain("id", "environment", "instance_id", "created_at")),
    Model("core.ControlResult", plain("id", "control_id", "status", "evidence",
                                      "public_summary", "checked_at")),
    # --- identity: the team's members and their credentials ---
    Model("identity.Member", {
        **plain("id", "last_login", "is_active", "created_at"),
        "email": personal("email"),
        "name": personal(),
        "password": secret("unusable"),
    }, links=(Link(MEMBER, "id", action="scrub",
                   scrub="email = 'erased-' || id || '@erased.invalid', name = '', "
                         "is_active = FALSE, password = '!'"),)),
    Model("identity.OwnerSetupToken", {
        **plain("id", "created_at", "expires_at", "used_at"),
        "token_hash": secret(),
    }),
    Model("identity.SignupToken", {
        **plain("id", "created_at", "expires_at", "used_at"),
        "email": personal("email"),
        "token_hash": secret(),
    }),
    Model("identity.PasswordResetToken", {
        **plain("id", "member", "created_at", "expires_at", "used_at"),
        "token_hash": secret(),
    }, links=(Link(MEMBER, "member_id"),)),
    Model("identity.ThrottleCounter", {
        # A keyed digest of an email or an address; not reversible, but never logged.
        **plain("id", "failures", "last_failure_at", "blocked_until"),
        "key": secret(),
    }),
    Model("identity.MemberSession", {
        **plain("id", "member", "account", "created_at", "last_seen_at", "authenticated_at",
                "absolute_expires_at", "revoked_at"),
        "key_hash": secret(),
        "user_agent": personal(),
        "ip": sensitive("null"),
    }, links=(Link(MEMBER, "member_id"),)),
    Model("identity.TotpDevice", {
        **plain("id", "member", "row_id", "created_at", "confirmed_at", "last_used_step"),
        "secret": secret(),
    }, links=(Link(MEMBER, "member_id"),)),
    Model("identity.RecoveryCode", {
        **plain("id", "member", "created_at", "used_at"),
        "code_hash": secret(),
    }, links=(Link(MEMBER, "member_id"),)),
    Model("sessions.Session", {
        **plain("expire_date"),
        "session_key": secret(),
        "session_data": secret("blank"),
    }),
    # --- accounts ---
    Model("accounts.Account", plain("id", "name", "created_at", "idle_timeout_minutes",
                                    "require_mfa", "postal_address")),
    Model("accounts.Membership", plain("id", "member", "account", "role", "custom_role",
                                       "created_at")),
    Model("accounts.Role", plain("id", "account", "name", "permissions", "created_at")),
    Model("accounts.Invitation", {
        **plain("id", "account", "role", "invited_by", "created_at", "expires_at",
                "accepted_at", "accepted_by"),
        "email": personal("email"),
        "token_hash": secret(),
    }),
    # --- API keys ---
    Model("apikeys.ApiKey", {
        **plain("id", "account", "public_id", "name", "mac_version", "scopes",
                "role_ceiling", "allowed_ips", "created_by", "creator_membership",
                "created_at", "expires_at", "last_used_at", "revoked_at", "exposed_at",
                "rolled_at", "grace_until", "predecessor", "kind", "allowed_origins",
                "require_consent", "identify_mode"),
        "secret_mac": secret(),
        "last_used_ip": sensitive("null"),
    }),
    Model("apikeys.ApiKeyPolicy", plain("id", "account", "max_age_days", "updated_at")),
    # --- keys, backups, scanning: no personal data ---
    Model("keys.DataKey", {
        **plain("id", "purpose", "version", "kek_id", "created_at", "state", "retired_at"),
        "wrapped": secret(),
    }),
    Model("keys.KeyEncryptionKey", plain("id", "kek_id", "provider", "created_at")),
    Model("keys.ReencryptionRun", plain("id", "started_at", "finished_at", "batch_size",
                                        "cursor", "reencrypted")),
    Model("backups.Backup", plain("id", "backup_id", "created_at", "environment", "target",
                                  "engine", "plaintext_bytes", "stored_bytes",
                                  "plaintext_sha256", "duration_seconds", "expunged_at")),
    Model("backups.RestoreDrill", plain("id", "backup_id", "started_at", "rto_seconds",
                                        "succeeded", "detail")),
    Model("backups.ErasureTombstone", plain("id", "subject", "account_id", "object_id", "row_key",
                                            "erased_at")),
    Model("scanning.DependencyAudit", plain("id", "ran_at", "source", "data_date", "status",
                                            "vulnerable_count", "unaudited_count", "stale",
                                            "summary")),
)

# Third-party tables with no personal data (Django's own).
THIRD_PARTY = ("contenttypes.ContentType", "auth.Permission", "auth.Group")

BY_LABEL: dict[str, Model] = {m.label.lower(): m for m in MODELS}


def model(label: str) -> Model:
    """The entry for ``app.Model`` (case-insensitive); KeyError when unregistered."""
    return BY_LABEL[label.lower()]


def field_of(label: str, name: str) -> Field:
    return model(label).fields[name]


def classes_of(label: str, names) -> dict[str, str]:
    """``{field: class}`` for ``names`` of model ``label`` (for the visibility table)."""
    entry = model(label)
    return {name: entry.fields[name].cls for name in names}


def log_redacted_names() -> frozenset[str]:
    """Field names whose values logs may not carry (personal data, any model), used as key
    terms by the log redaction policy. Names of 2 letters or fewer (``ip``) are left to
    value detectors: as keys they are too ambiguous to redact by name alone."""
    return frozenset(name for entry in MODELS for name, rule in entry.fields.items()
                     if rule.cls in (PERSONAL, SENSITIVE) and len(name) > 2)


def _table(label: str, models_by_label) -> str | None:
    found = models_by_label.get(label.lower())
    return None if found is None else found._meta.db_table


def _models_by_label() -> dict:
    from django.apps import apps

    return {m._meta.label_lower: m for m in apps.get_models()}


def erasure_steps(subject: str) -> list[tuple[Model, Link, str]]:
    """For erasing ``subject``s: every (model, link, table) to touch, children before the
    subject's own table (so foreign keys hold on every database, with or without
    cascades). Tables that do not exist in this code's models are left out."""
    by_label = _models_by_label()
    steps = [(entry, link, _table(entry.label, by_label))
             for entry in MODELS for link in entry.links if link.subject == subject]
    # The subject's own row (column "id", not by account) goes last.
    steps.sort(key=lambda s: (s[1].column == "id" and not s[1].by_account))
    return [s for s in steps if s[2] is not None]


def anonymise_assignments() -> list[tuple[Model, str, str]]:
    """For every model with fields to anonymise: (model, table, "col = expr, ...")."""
    by_label = _models_by_label()
    out = []
    for entry in MODELS:
        django_model = by_label.get(entry.label.lower())
        if django_model is None:
            continue
        parts = []
        for name, rule in entry.fields.items():
            expression = ANONYMISERS[rule.anonymise]
            if expression is not None:
                column = django_model._meta.get_field(name).column
                parts.append(f'"{column}" = {expression}')
        if parts:
            out.append((entry, django_model._meta.db_table, ", ".join(parts)))
    return out


def _column_field(django_model, column: str):
    return next(f for f in django_model._meta.concrete_fields if f.column == column)


def row_key_of(subject: str, row) -> str:
    """The value a tombstone records to tell ``row`` from a later row with its id."""
    column = SUBJECT_ROWS[subject][1]
    return "" if column is None else str(getattr(row, column))


def _own_rows(cursor, subject: str, ids: list[int], existing: set[str], by_label
              ) -> dict[int, str]:
    """``{id: row key}`` of the subject rows with these ids in this database."""
    label, column = SUBJECT_ROWS[subject]
    model = by_label[label.lower()]
    table = model._meta.db_table
    if table not in existing:
        return {}
    field = model._meta.get_field(column) if column else None
    select = f'id, "{field.column}"' if field else "id, ''"
    found: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        batch = ids[start:start + 500]
        cursor.execute(f'SELECT {select} FROM "{table}" '  # noqa: S608 - registry names
                       f'WHERE id IN ({", ".join(["%s"] * len(batch))})', batch)
        found.update({int(pk): str(field.to_python(key)) if field else ""
                      for pk, key in cursor.fetchall()})
    return found


def _matches(target, found: dict[int, str]) -> bool:
    """The target's own row is present and is that subject (same row key, when the
    tombstone names one)."""
    key = target[2] if len(target) > 2 else ""
    return int(target[1]) in found and (not key or found[int(target[1])] == str(key))


def present(conn, subject: str, targets) -> list:
    """The targets whose own row in the database behind ``conn`` is still that subject:
    same id and, when the tombstone names one, the same row key. (A row created after a
    backup was taken and erased later is absent from a restore of it; its id may since
    belong to someone else, who must not be erased — nor be reported as left over.)"""
    targets = list(targets)
    with conn.cursor() as cursor:
        found = _own_rows(cursor, subject, sorted({int(t[1]) for t in targets}),
                          set(conn.introspection.table_names()), _models_by_label())
    return [t for t in targets if _matches(t, found)]


def erase_subjects(conn, subject: str, targets) -> int:
    """Erase ``subject``s — ``targets`` are ``(account_id, id[, row_key])`` tuples — from
    the database behind ``conn`` (the live connection inside the erasure's transaction, or
    a restored database's connection): every linked row is deleted or scrubbed, in
    :func:`erasure_steps` order. A target with a row key is erased only while its own row
    still carries that key (:func:`row_key_of`). Returns the number of rows touched.
    Audit rows are scrubbed under the audit log's scrub mode (``core.auditlog``)."""
    from enclave.core import auditlog

    targets = present(conn, subject, targets)
    existing = set(conn.introspection.table_names())
    by_label = _models_by_label()
    ids = sorted({int(t[1]) for t in targets})
    accounts = sorted({int(t[0]) for t in targets if t[0] is not None})
    if not ids:
        return 0
    touched = 0
    with conn.cursor() as cursor:
        for entry, link, table in erasure_steps(subject):
            if table not in existing:
                continue
            django_field = _column_field(by_label[entry.label.lower()], link.column)
            values = [django_field.get_prep_value(django_field.to_python(v))
                      for v in (accounts if link.by_account else ids)]
            for start in range(0, len(values), 500):
                batch = values[start:start + 500]
                condition = f'"{link.column}" IN ({", ".join(["%s"] * len(batch))})'
                if link.where:
                    condition += f" AND {link.where}"
                if link.action == "delete":
                    sql = f'DELETE FROM "{table}" WHERE {condition}'  # noqa: S608 - names from the registry
                else:
                    sql = f'UPDATE "{table}" SET {link.scrub} WHERE {condition}'  # noqa: S608
                if entry.audit_table:
                    with auditlog.scrub_mode(conn, cursor):
                        cursor.execute(sql, batch)
                else:
                    cursor.execute(sql, batch)
                touched += max(cursor.rowcount, 0)
    return touched


def anonymise_database(conn) -> int:
    """Replace every personal value in the database behind ``conn`` (a restored copy)
    with its anonymised form. Returns the number of rows rewritten."""
    from enclave.core import auditlog

    existing = set(conn.introspection.table_names())
    touched = 0
    with conn.cursor() as cursor:
        for entry, table, assignments in anonymise_assignments():
            if table not in existing:
                continue
            sql = f'UPDATE "{table}" SET {assignments}'  # noqa: S608 - names from the registry
            if entry.audit_table:
                with auditlog.scrub_mode(conn, cursor):
                    cursor.execute(sql)
            else:
                cursor.execute(sql)
            touched += max(cursor.rowcount, 0)
    return touched
