"""Backup targets behind one small interface: a local directory, S3-compatible object
storage, and an in-memory twin for tests.

A backup is ``<id>/data.enc`` plus ``<id>/manifest.json``. The data is written under a
temporary name (local: ``data.enc.part``; S3: an uncompleted multipart upload, invisible to
readers) and the manifest is written last, atomically, only after the data has been read
back and verified. Only ids with a manifest are listed: an interrupted backup never looks
complete.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol

from enclave.backups.errors import BackupNotFound, BackupTargetError
from enclave.core.overrides import Override

DATA = "data.enc"
MANIFEST = "manifest.json"


class Upload(Protocol):
    def write(self, data: bytes) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class BackupTarget(Protocol):
    def describe(self) -> str: ...
    def open_upload(self, backup_id: str) -> Upload: ...
    def put_manifest(self, backup_id: str, data: bytes) -> None: ...
    def open_data(self, backup_id: str, *, staged: bool = False) -> BinaryIO: ...
    def read_manifest(self, backup_id: str) -> bytes: ...
    def list_ids(self) -> list[str]: ...
    def list_incomplete(self) -> list[str]: ...
    def delete(self, backup_id: str) -> None: ...


def _check_id(backup_id: str) -> str:
    if not backup_id or not all(c.isalnum() or c in "-_" for c in backup_id):
        raise BackupNotFound(f"no backup with id {backup_id!r}")
    return backup_id


class LocalUpload:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, exist_ok=True)
        self._part = directory / (DATA + ".part")
        fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._file = os.fdopen(fd, "wb")
        self._final = directory / DATA

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._part.replace(self._final)

    def abort(self) -> None:
        self._file.close()
        self._part.unlink(missing_ok=True)


class LocalDirectoryTarget:
    """Backups in a 0700 directory (``ENCLAVE_BACKUP_DIR``, default ``var/backups``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _ensure_root(self) -> Path:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.root.chmod(0o700)
        except OSError as exc:
            raise BackupTargetError(f"backup directory {self.root}: {exc.strerror}") from None
        return self.root

    def describe(self) -> str:
        return f"local:{self.root}"

    def open_upload(self, backup_id: str) -> Upload:
        return LocalUpload(self._ensure_root() / _check_id(backup_id))

    def put_manifest(self, backup_id: str, data: bytes) -> None:
        directory = self._ensure_root() / _check_id(backup_id)
        part = directory / (MANIFEST + ".part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        part.replace(directory / MANIFEST)

    def _complete(self, backup_id: str) -> Path:
        directory = self.root / _check_id(backup_id)
        if not (directory / MANIFEST).is_file():
            raise BackupNotFound(f"no complete backup with id {backup_id!r} on "
                                 f"{self.describe()}")
        return directory

    def open_data(self, backup_id: str, *, staged: bool = False) -> BinaryIO:
        """The encrypted data; ``staged`` reads it before the manifest exists (verify)."""
        path = (self.root / _check_id(backup_id) if staged else self._complete(backup_id)) / DATA
        try:
            return path.open("rb")
        except OSError as exc:
            raise BackupTargetError(f"backup {backup_id}: {exc.strerror}: {path}") from None

    def read_manifest(self, backup_id: str) -> bytes:
        return (self._complete(backup_id) / MANIFEST).read_bytes()

    def _dirs(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir())

    def list_ids(self) -> list[str]:
        return [p.name for p in self._dirs() if (p / MANIFEST).is_file()]

    def list_incomplete(self) -> list[str]:
        return [p.name for p in self._dirs() if not (p / MANIFEST).is_file()]

    def delete(self, backup_id: str) -> None:
        directory = self.root / _check_id(backup_id)
        # The manifest goes first, so a half-deleted backup never looks complete.
        (directory / MANIFEST).unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)


class S3Upload:
    """A multipart upload: parts of ``PART_SIZE`` bytes, nothing visible until commit."""

    PART_SIZE = 8 * 1024 * 1024

    def __init__(self, target: S3Target, key: str) -> None:
        self._t, self._key = target, key
        self._id = target._call("create_multipart_upload", Bucket=target.bucket,
                                Key=key)["UploadId"]
        self._buffer = bytearray()
        self._parts: list[dict] = []

    def _flush(self) -> None:
        number = len(self._parts) + 1
        etag = self._t._call("upload_part", Bucket=self._t.bucket, Key=self._key,
                             UploadId=self._id, PartNumber=number,
                             Body=bytes(self._buffer))["ETag"]
        self._parts.append({"ETag": etag, "PartNumber": number})
        self._buffer.clear()

    def write(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= self.PART_SIZE:
            self._flush()

    def commit(self) -> None:
        if self._buffer or not self._parts:
            self._flush()
        self._t._call("complete_multipart_upload", Bucket=self._t.bucket, Key=self._key,
                      UploadId=self._id, MultipartUpload={"Parts": self._parts})

    def abort(self) -> None:
        self._t._call("abort_multipart_upload", Bucket=self._t.bucket, Key=self._key,
                      UploadId=self._id)


class S3Target:
    """Backups in an S3-compatible bucket (``ENCLAVE_BACKUP_S3_BUCKET``; endpoint from
    ``ENCLAVE_AWS_ENDPOINT_URL``; credentials from the standard AWS chain)."""

    def __init__(self, bucket: str, *, prefix: str = "enclave-backups/",
                 endpoint_url: str | None = None, region: str | None = None) -> None:
        self.bucket, self.prefix = bucket, prefix
        self._endpoint, self._region = endpoint_url, region
        self._client = None

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3", endpoint_url=self._endpoint, region_name=self._region or "us-east-1",
                config=Config(connect_timeout=5, read_timeout=60,
                              retries={"max_attempts": 2}))
        return self._client

    def _call(self, operation: str, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"NoSuchKey", "404"}:
                raise BackupNotFound(f"not found on {self.describe()}: "
                                     f"{kwargs.get('Key', '')}") from None
            raise BackupTargetError(f"{self.describe()}: {operation} failed: {code}") from None
        except BotoCoreError as exc:
            raise BackupTargetError(f"{self.describe()} unreachable: {exc}") from None

    def _key(self, backup_id: str, name: str) -> str:
        return f"{self.prefix}{_check_id(backup_id)}/{name}"

    def open_upload(self, backup_id: str) -> Upload:
        return S3Upload(self, self._key(backup_id, DATA))

    def put_manifest(self, backup_id: str, data: bytes) -> None:
        self._call("put_object", Bucket=self.bucket, Key=self._key(backup_id, MANIFEST),
                   Body=data)

    def open_data(self, backup_id: str, *, staged: bool = False) -> BinaryIO:
        if not staged:
            self.read_manifest(backup_id)  # only complete backups are readable
        return self._call("get_object", Bucket=self.bucket,
                          Key=self._key(backup_id, DATA))["Body"]

    def read_manifest(self, backup_id: str) -> bytes:
        try:
            body = self._call("get_object", Bucket=self.bucket,
                              Key=self._key(backup_id, MANIFEST))["Body"]
        except BackupNotFound:
            raise BackupNotFound(f"no complete backup with id {backup_id!r} on "
                                 f"{self.describe()}") from None
        return body.read()

    def _names(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        token = None
        while True:
            kwargs = {"Bucket": self.bucket, "Prefix": self.prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", **kwargs)
            for item in page.get("Contents", []):
                backup_id, _, name = item["Key"][len(self.prefix):].partition("/")
                found.setdefault(backup_id, set()).add(name)
            if not page.get("IsTruncated"):
                return found
            token = page["NextContinuationToken"]

    def list_ids(self) -> list[str]:
        return sorted(i for i, names in self._names().items() if MANIFEST in names)

    def list_incomplete(self) -> list[str]:
        return sorted(i for i, names in self._names().items() if MANIFEST not in names)

    def delete(self, backup_id: str) -> None:
        for name in (MANIFEST, DATA):
            self._call("delete_object", Bucket=self.bucket, Key=self._key(backup_id, name))


class MemoryUpload:
    def __init__(self, target: MemoryTarget, backup_id: str) -> None:
        self._t, self._id, self._buffer = target, backup_id, bytearray()

    def write(self, data: bytes) -> None:
        self._buffer += data

    def commit(self) -> None:
        self._t.objects.setdefault(self._id, {})[DATA] = bytes(self._buffer)

    def abort(self) -> None:
        self._buffer.clear()


class MemoryTarget:
    """The in-memory twin (tests)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, bytes]] = {}

    def describe(self) -> str:
        return "memory"

    def open_upload(self, backup_id: str) -> Upload:
        return MemoryUpload(self, _check_id(backup_id))

    def put_manifest(self, backup_id: str, data: bytes) -> None:
        self.objects.setdefault(backup_id, {})[MANIFEST] = data

    def _get(self, backup_id: str, name: str) -> bytes:
        entry = self.objects.get(backup_id, {})
        if MANIFEST not in entry:
            raise BackupNotFound(f"no complete backup with id {backup_id!r} on memory")
        return entry[name]

    def open_data(self, backup_id: str, *, staged: bool = False) -> BinaryIO:
        if staged:
            return io.BytesIO(self.objects[backup_id][DATA])
        return io.BytesIO(self._get(backup_id, DATA))

    def read_manifest(self, backup_id: str) -> bytes:
        return self._get(backup_id, MANIFEST)

    def list_ids(self) -> list[str]:
        return sorted(i for i, e in self.objects.items() if MANIFEST in e)

    def list_incomplete(self) -> list[str]:
        return sorted(i for i, e in self.objects.items() if MANIFEST not in e)

    def delete(self, backup_id: str) -> None:
        self.objects.pop(backup_id, None)


_override: Override[BackupTarget] = Override()


def get_target() -> BackupTarget:
    """The configured target (or the one installed by :func:`use_target`)."""
    if _override.value is not None:
        return _override.value
    from django.conf import settings

    cfg = settings.CONFIG
    if cfg.backup_target == "s3":
        return S3Target(cfg.backup_s3_bucket, prefix=cfg.backup_s3_prefix,
                        endpoint_url=cfg.aws_endpoint_url, region=cfg.aws_region)
    return LocalDirectoryTarget(cfg.backup_dir)


def use_target(target: BackupTarget):
    """Install ``target`` for the duration of a ``with`` block (tests, drills)."""
    return _override.use(target)
