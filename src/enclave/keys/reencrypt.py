"""Bulk re-encryption of every encrypted field value under a non-primary key version.

An action that is deliberately *not* one transaction: it works online in batches (one
transaction each, the cursor saved with the batch), so it can run while the application
serves traffic and resumes where it stopped after an interruption. Each value is
rewritten with compare-and-swap, so a concurrent application write always wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction

from enclave.core import audit, clock
from enclave.core.models import AuditEventType
from enclave.keys import api, envelope, keyring
from enclave.keys.errors import KeyringError
from enclave.keys.fields import Sealed, encrypted_fields
from enclave.keys.models import ReencryptionRun

Progress = Callable[[int, int, str], None]  # (done, total, where)


@dataclass
class Report:
    run_id: int
    resumed: bool
    reencrypted: int = 0
    scanned: int = 0
    failures: list[str] = field(default_factory=list)  # "label pk=..: error" (no values)
    remaining: dict[str, int] = field(default_factory=dict)  # label -> values not on primary

    @property
    def ok(self) -> bool:
        return not self.failures and not any(self.remaining.values())


def _label(model, fld) -> str:
    return f"{model._meta.label}.{fld.name}"


def _outdated(model, fld):
    prefix = envelope.text_prefix(fld.purpose, keyring.primary(fld.purpose).version)
    return (model._base_manager.filter(**{f"{fld.attname}__isnull": False})
            .exclude(**{f"{fld.attname}__startswith": prefix}))


def pending_counts() -> dict[str, int]:
    """Values not under their purpose's primary key, per encrypted column."""
    return {_label(m, f): _outdated(m, f).count() for m, f in encrypted_fields()}


def _aad(model, fld, row_id) -> bytes:
    return b"\x00".join((b"enclave-field", model._meta.db_table.encode(), fld.column.encode(),
                         str(row_id).encode()))


def _rewrite(model, fld, pk, row_id, stored: str) -> int:
    aad = _aad(model, fld, row_id)
    plaintext = api.decrypt(fld.purpose, envelope.from_text(stored), aad=aad)
    fresh = Sealed(envelope.to_text(api.encrypt(fld.purpose, plaintext, aad=aad)))
    return model._base_manager.filter(pk=pk, **{fld.attname: Sealed(stored)}).update(
        **{fld.attname: fresh})


def _json_pk(pk):
    return pk if isinstance(pk, int) else str(pk)


def do_reencrypt_values(*, actor, batch_size: int = 500, progress: Progress | None = None,
                        on_batch: Callable[[int], None] | None = None) -> Report:
    """Re-encrypt every encrypted-field value that is not under its primary key version.

    Resumes the last unfinished run (its per-column cursor) if there is one. ``on_batch``
    is called after each committed batch with the number of rows scanned so far (tests use
    it to interrupt). Ends with a verification pass that decrypts every value; the report
    lists failures by row id only. Raises KeyringError when a key is unavailable.
    """
    if batch_size < 1:
        raise KeyringError("batch size must be at least 1")
    run = ReencryptionRun.objects.filter(finished_at__isnull=True).order_by("-pk").first()
    resumed = run is not None
    if run is None:
        run = ReencryptionRun.objects.create(batch_size=batch_size)
    report = Report(run.pk, resumed)
    total = sum(pending_counts().values())
    done = 0
    failed: set[tuple[str, object]] = set()
    for model, fld in encrypted_fields():
        label = _label(model, fld)
        last = run.cursor.get(label)
        while True:
            rows = model._base_manager.filter(**{f"{fld.attname}__isnull": False}).order_by("pk")
            if last is not None:
                rows = rows.filter(pk__gt=last)
            batch = list(rows.values_list("pk", fld.row_id_field, fld.attname)[:batch_size])
            if not batch:
                break
            prefix = envelope.text_prefix(fld.purpose, keyring.primary(fld.purpose).version)
            with transaction.atomic():
                rewritten = 0
                for pk, row_id, stored in batch:
                    report.scanned += 1
                    if stored.startswith(prefix):
                        continue
                    try:
                        rewritten += _rewrite(model, fld, pk, row_id, stored)
                    except KeyringError as exc:
                        report.failures.append(f"{label} pk={pk}: {exc}")
                        failed.add((label, pk))
                    done += 1
                last = _json_pk(batch[-1][0])
                run.cursor = {**run.cursor, label: last}
                run.reencrypted += rewritten
                run.save(update_fields=["cursor", "reencrypted"])
            report.reencrypted += rewritten
            if progress:
                progress(min(done, total), total, label)
            if on_batch:
                on_batch(report.scanned)
    _verify(report, failed)
    with transaction.atomic():
        run.finished_at = clock.now()
        run.save(update_fields=["finished_at"])
        audit.record(AuditEventType.KEYS_REENCRYPTED, actor=actor, target_type="reencryption",
                     target_id=run.pk, extra={"reencrypted": report.reencrypted,
                                              "total_in_run": run.reencrypted,
                                              "resumed": resumed, "ok": report.ok,
                                              "failures": len(report.failures)})
    return report


def _verify(report: Report, failed: set[tuple[str, object]]) -> None:
    """Every value decrypts, and none is left under a non-primary version."""
    report.remaining = {k: v for k, v in pending_counts().items() if v}
    for model, fld in encrypted_fields():
        label = _label(model, fld)
        rows = (model._base_manager.filter(**{f"{fld.attname}__isnull": False})
                .order_by("pk").values_list("pk", fld.row_id_field, fld.attname))
        for pk, row_id, stored in rows.iterator(chunk_size=500):
            try:
                api.decrypt(fld.purpose, envelope.from_text(stored),
                            aad=_aad(model, fld, row_id))
            except KeyringError as exc:
                if (label, pk) not in failed:
                    report.failures.append(f"{label} pk={pk}: {exc}")
