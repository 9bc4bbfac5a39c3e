"""What still uses a key version: encrypted model fields, plus stores outside them (logs,
token hashes) that register a counter here. ``actions.do_retire_key_version`` refuses to
retire a version something still uses."""

from __future__ import annotations

from collections.abc import Callable

from enclave.keys.fields import encrypted_fields

# Reference counters: name -> fn(purpose, version) -> number of stored values under it.
ReferenceCounter = Callable[[str, int], int]
_counters: dict[str, ReferenceCounter] = {}


def register_reference_counter(name: str, counter: ReferenceCounter) -> None:
    """Let a store outside encrypted fields (logs, token hashes) say what still uses a key
    version, so :func:`~enclave.keys.actions.do_retire_key_version` refuses to retire it."""
    _counters[name] = counter


def reference_counts(purpose: str, number: int) -> dict[str, int]:
    """Non-zero counts of stored values under ``purpose`` v``number``, by where they live."""
    counts: dict[str, int] = {}
    for model, field in encrypted_fields():
        if field.purpose != purpose:
            continue
        n = field.count_version(model, number)
        if n:
            counts[f"{model._meta.label}.{field.name}"] = n
    for name, counter in sorted(_counters.items()):
        n = counter(purpose, number)
        if n:
            counts[name] = n
    return counts
