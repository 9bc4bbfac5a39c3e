"""Read-only views of the keyring for the CLI, controls and jobs (no key material)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from enclave.core import clock
from enclave.keys import services
from enclave.keys.models import PURPOSES, DataKey, KeyEncryptionKey, KeyState
from enclave.keys.references import reference_counts


def max_age(cfg) -> dt.timedelta:
    return dt.timedelta(days=cfg.key_max_age_days)


@dataclass(frozen=True)
class KeyLine:
    purpose: str
    version: int
    state: str
    kek_id: str
    age_days: int
    references: int | None


def current_kek_record() -> KeyEncryptionKey | None:
    """The KEK record that wraps the primary keys (the newest one in use)."""
    ids = set(DataKey.objects.exclude(state=KeyState.RETIRED).values_list("kek_id", flat=True))
    return KeyEncryptionKey.objects.filter(kek_id__in=ids).order_by("-created_at").first()


def key_lines(*, with_references: bool = True) -> list[KeyLine]:
    now = clock.now()
    lines = []
    for row in DataKey.objects.order_by("purpose", "version"):
        refs = None
        if with_references and row.state != KeyState.RETIRED:
            refs = sum(reference_counts(row.purpose, row.version).values())
        lines.append(KeyLine(row.purpose, row.version, row.state, row.kek_id,
                             (now - row.created_at).days, refs))
    return lines


def over_age(cfg) -> list[str]:
    """Descriptions of every primary data key and the current KEK older than the policy."""
    now, limit = clock.now(), max_age(cfg)
    late = []
    primaries = {r.purpose: r for r in DataKey.objects.filter(state=KeyState.PRIMARY)}
    for purpose in PURPOSES:
        row = primaries.get(purpose)
        if row is None:
            late.append(f"{purpose}: no primary key")
        elif now - row.created_at > limit:
            late.append(f"{purpose} v{row.version} is {(now - row.created_at).days} days old")
    kek = current_kek_record()
    if kek is not None and now - kek.created_at > limit:
        late.append(f"KEK {kek.kek_id} is {(now - kek.created_at).days} days old")
    return late


def provider_line() -> str:
    return services.get_provider().describe()
