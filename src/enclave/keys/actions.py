"""Keyring state changes. Each runs in one transaction with its audit row.

Actors are members; ``None`` means the system itself (first use, scheduled rotation,
operator CLI on the host).
"""

from __future__ import annotations

import os

from django.db import IntegrityError, transaction

from enclave.core import audit, clock
from enclave.core.models import AuditEventType
from enclave.keys import keyring, references, services
from enclave.keys.errors import KeyInUse, MissingKeyVersion, RotationError
from enclave.keys.models import PURPOSES, DataKey, KeyEncryptionKey, KeyState

DATA_KEY_BYTES = 32


def _record_kek(kek_id: str, provider_name: str) -> None:
    KeyEncryptionKey.objects.get_or_create(kek_id=kek_id, defaults={"provider": provider_name})


def do_rotate_data_key(purpose: str, *, actor, reason: str = "") -> DataKey:
    """Make a new primary version of ``purpose``'s data key; the old primary stays active
    (it still decrypts). Creates version 1 when the purpose has no key yet.

    Raises UnknownPurpose, KekError. Returns the new primary row.
    """
    keyring.check_purpose(purpose)
    provider = services.get_provider()
    with transaction.atomic():
        rows = list(DataKey.objects.select_for_update().filter(purpose=purpose))
        previous = next((r for r in rows if r.state == KeyState.PRIMARY), None)
        number = max((r.version for r in rows), default=0) + 1
        raw = os.urandom(DATA_KEY_BYTES)
        kek_id, wrapped = provider.wrap(raw, context=keyring.wrap_context(purpose, number))
        _record_kek(kek_id, provider.name)
        if previous is not None:
            previous.state = KeyState.ACTIVE
            previous.save(update_fields=["state"])
        row = DataKey.objects.create(purpose=purpose, version=number, wrapped=wrapped,
                                     kek_id=kek_id, state=KeyState.PRIMARY)
        event = AuditEventType.DATA_KEY_ROTATED if previous else AuditEventType.DATA_KEY_CREATED
        audit.record(event, actor=actor, target_type="data_key", target_id=f"{purpose}:{number}",
                     extra={"purpose": purpose, "version": number, "kek_id": kek_id,
                            "previous_version": previous.version if previous else None,
                            "reason": reason})
    keyring.evict(purpose, number)
    return row


def do_rotate_kek(*, actor) -> str:
    """Make a new KEK current and rewrap every unretired data key under it.

    Data is not touched: data keys keep their material, only their wrapping changes.
    Returns the new KEK id. Raises KekError (old KEK cannot unwrap, new cannot wrap).
    """
    provider = services.get_provider()
    new_id = provider.new_kek()
    with transaction.atomic():
        rows = list(DataKey.objects.select_for_update().exclude(state=KeyState.RETIRED)
                    .order_by("purpose", "version"))
        previous = sorted({r.kek_id for r in rows})
        for row in rows:
            context = keyring.wrap_context(row.purpose, row.version)
            raw = provider.unwrap(row.kek_id, bytes(row.wrapped), context=context)
            row.kek_id, row.wrapped = provider.wrap(raw, context=context)
            row.save(update_fields=["kek_id", "wrapped"])
        new_id = rows[-1].kek_id if rows else new_id
        _record_kek(new_id, provider.name)
        # A rotation always starts a new KEK age, also when KMS keeps the same key id.
        KeyEncryptionKey.objects.filter(kek_id=new_id).update(created_at=clock.now())
        audit.record(AuditEventType.KEK_ROTATED, actor=actor, target_type="kek",
                     target_id=new_id[-64:], extra={"kek_id": new_id, "previous": previous,
                                                    "data_keys_rewrapped": len(rows)})
    return new_id


def do_retire_key_version(purpose: str, version: int, *, actor) -> DataKey:
    """Retire ``purpose`` v``version``: destroy its wrapped key so nothing decrypts under it.

    Refused (KeyInUse) for the primary version and while any registered store still holds
    values under it — run ``enclave keys reencrypt`` first. Retiring twice is a no-op.
    """
    keyring.check_purpose(purpose)
    with transaction.atomic():
        row = DataKey.objects.select_for_update().filter(purpose=purpose,
                                                         version=version).first()
        if row is None:
            raise MissingKeyVersion(f"{purpose} key v{version} does not exist")
        if row.state == KeyState.RETIRED:
            return row
        if row.state == KeyState.PRIMARY:
            raise KeyInUse(f"{purpose} key v{version} is the primary key; rotate first")
        counts = references.reference_counts(purpose, version)
        if counts:
            where = ", ".join(f"{n} in {name}" for name, n in counts.items())
            raise KeyInUse(f"{purpose} key v{version} still protects {sum(counts.values())} "
                           f"value(s) ({where}); run `enclave keys reencrypt` first")
        row.state, row.wrapped, row.retired_at = KeyState.RETIRED, b"", clock.now()
        row.save(update_fields=["state", "wrapped", "retired_at"])
        audit.record(AuditEventType.KEY_VERSION_RETIRED, actor=actor, target_type="data_key",
                     target_id=f"{purpose}:{version}",
                     extra={"purpose": purpose, "version": version})
    keyring.evict(purpose, version)
    return row


def do_rotate_expired_keys(*, actor=None) -> dict:
    """The scheduled key-age policy: rotate every data key (and a file KEK) older than
    ``ENCLAVE_KEY_MAX_AGE_DAYS``, taking "now" from the clock. Returns what was rotated."""
    from django.conf import settings

    from enclave.keys import status

    max_age = status.max_age(settings.CONFIG)
    rotated: dict = {"data_keys": [], "kek": None}
    for purpose in PURPOSES:
        current = DataKey.objects.filter(purpose=purpose, state=KeyState.PRIMARY).first()
        if current is None or clock.now() - current.created_at > max_age:
            row = do_rotate_data_key(purpose, actor=actor, reason="key-age policy")
            rotated["data_keys"].append(f"{purpose}:{row.version}")
    kek = status.current_kek_record()
    if services.get_provider().name == "file" and kek is not None \
            and clock.now() - kek.created_at > max_age:
        rotated["kek"] = do_rotate_kek(actor=actor)
    return rotated


def refuse_unknown_purpose(purpose: str | None) -> list[str]:
    """The purposes a CLI rotation covers: one named purpose, or all of them."""
    if purpose is None:
        return list(PURPOSES)
    if purpose not in PURPOSES:
        raise RotationError(f"unknown key purpose {purpose!r}; expected one of "
                            f"{', '.join(PURPOSES)}")
    return [purpose]


# --- every purpose has a primary key ---

def create_first_key(purpose: str) -> DataKey:
    """Create version 1 of ``purpose`` (racing creators: the loser reads the winner's row)."""
    try:
        with transaction.atomic():
            do_rotate_data_key(purpose, actor=None)
    except IntegrityError:
        pass
    return DataKey.objects.get(purpose=purpose, state=KeyState.PRIMARY)


def ensure_data_keys() -> list[str]:
    """Create a primary key for every purpose that has none. Returns the purposes created."""
    created = []
    for purpose in PURPOSES:
        if not DataKey.objects.filter(purpose=purpose, state=KeyState.PRIMARY).exists():
            create_first_key(purpose)
            created.append(purpose)
    return created


def ensure_data_keys_after_migrate(sender, using="default", **kwargs) -> None:
    """post_migrate: every purpose has a primary key from the first migrate on, so the
    first key of a purpose is never created inside some unrelated transaction."""
    if using == "default":
        ensure_data_keys()
