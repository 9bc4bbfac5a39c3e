"""Per-backup data keys, wrapped directly by the KEK, kept in the secrets directory.

Each key lives in ``<ENCLAVE_SECRETS_DIR>/backup-keys/<backup_id>.key`` (directory 0700,
file 0600, written atomically): JSON with the KEK id, the wrapped key (base64), the wrap
context (backup id and environment, bound as associated data) and the creation time.
Nothing about a backup's key is in the database, so a backup restores on a fresh
database with only the secrets directory (or a KMS-held KEK plus that directory) and the
target. Unlinking the file crypto-shreds every copy of the backup.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import json
import os
import re
import tempfile
from pathlib import Path

from django.conf import settings

from enclave.backups.errors import BackupCorrupt, BackupRefused
from enclave.core import clock
from enclave.core.overrides import Override
from enclave.keys import services as kek
from enclave.keys.errors import KekConfigError, KeyringError

KEY_BYTES = 32
SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_override: Override[Path] = Override()


def directory() -> Path:
    """Where backup keys live (a test override wins)."""
    return _override.value or settings.CONFIG.secrets_dir / "backup-keys"


def use_directory(path: Path):
    """Tests: keep backup keys in ``path`` for the duration of the block."""
    return _override.use(path)


def path_for(backup_id: str) -> Path:
    if not SAFE_ID.match(backup_id) or backup_id.startswith("."):
        raise BackupRefused(f"backup id {backup_id!r} is not a valid backup id")
    return directory() / f"{backup_id}.key"


def context_for(backup_id: str, environment: str) -> dict[str, str]:
    return {"purpose": "backup", "version": backup_id, "backup_id": backup_id,
            "environment": environment}


def store(backup_id: str, key: bytes, *, environment: str) -> str:
    """Wrap ``key`` under the current KEK and write it atomically; returns the KEK id."""
    context = context_for(backup_id, environment)
    try:
        kek_id, wrapped = kek.get_provider().wrap(key, context=context)
    except KeyringError as exc:
        raise BackupRefused(f"backup {backup_id}: its data key cannot be wrapped: {exc}") \
            from None
    path = path_for(backup_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    document = {"kek_id": kek_id, "wrapped_key": base64.b64encode(wrapped).decode(),
                "context": context, "created_at": clock.now().isoformat()}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return kek_id


def _read(path: Path, backup_id: str) -> dict:
    try:
        kek.check_secret_permissions(path, what="backup key file")
    except KekConfigError as exc:
        raise BackupRefused(f"backup {backup_id}: {exc}") from None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        wrapped = base64.b64decode(document["wrapped_key"], validate=True)
        kek_id, context = str(document["kek_id"]), dict(document["context"])
    except (OSError, ValueError, KeyError, TypeError, binascii.Error):
        raise BackupCorrupt(f"backup {backup_id}: its key file {path} is malformed") from None
    if context.get("backup_id") != backup_id:
        raise BackupCorrupt(f"backup {backup_id}: its key file {path} belongs to backup "
                            f"{context.get('backup_id')!r}")
    return {"kek_id": kek_id, "wrapped": wrapped, "context": context,
            "created_at": document.get("created_at")}


def load(backup_id: str) -> bytes:
    """The backup's data key. Raises BackupRefused when it was destroyed (expunged) or its
    file is open to group/others, BackupCorrupt when it cannot be unwrapped."""
    path = path_for(backup_id)
    if not path.is_file():
        raise BackupRefused(f"backup {backup_id}: no data key in {directory()} (expunged, "
                            "or made elsewhere); it cannot be read")
    doc = _read(path, backup_id)
    try:
        key = kek.get_provider().unwrap(doc["kek_id"], doc["wrapped"], context=doc["context"])
    except KeyringError as exc:
        raise BackupCorrupt(f"backup {backup_id}: its data key cannot be unwrapped "
                            f"({type(exc).__name__}: {exc})") from None
    if len(key) != KEY_BYTES:
        raise BackupCorrupt(f"backup {backup_id}: its data key is malformed")
    return key


def destroy(backup_id: str) -> None:
    """Unlink the key file: every copy of the backup becomes unreadable."""
    with contextlib.suppress(FileNotFoundError):
        path_for(backup_id).unlink()


def stored() -> dict[str, dt.datetime]:
    """Every stored key: backup id -> when the key was made (file time if unreadable)."""
    root = directory()
    if not root.is_dir():
        return {}
    out: dict[str, dt.datetime] = {}
    for path in root.glob("*.key"):
        created = None
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            created = dt.datetime.fromisoformat(
                json.loads(path.read_text(encoding="utf-8"))["created_at"])
        if created is None:
            created = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.UTC)
        out[path.name.removesuffix(".key")] = created
    return out
