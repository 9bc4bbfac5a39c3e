"""Key-encryption-key (KEK) providers behind one small protocol.

A provider wraps and unwraps data keys; it never sees data. Three implementations:

* :class:`FileKekProvider` — ``kek-<n>.key`` files in ``ENCLAVE_SECRETS_DIR`` (single host);
* :class:`AwsKmsKekProvider` — AWS KMS via boto3 (``ENCLAVE_KMS_KEY_ID``);
* :class:`MemoryKekProvider` — the in-memory twin for unit tests.

``ENCLAVE_KEK_PROVIDER`` (file|aws-kms) chooses one; :func:`get_provider` builds it once.
Every wrap binds the data key to its context (environment, purpose, version), so a data
key wrapped for one environment or purpose cannot be unwrapped as another.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from enclave.core.overrides import Override
from enclave.keys.errors import KekConfigError, KekError, MissingKek, WrongKek

KEK_BYTES = 32
SECRETS_SETTING = "ENCLAVE_SECRETS_DIR"


class KekProvider(Protocol):
    """What the keyring needs from a KEK backend."""

    name: str

    def current_kek_id(self) -> str:
        """The id of the KEK new wraps use (creating the first one where allowed)."""

    def wrap(self, data_key: bytes, *, context: dict[str, str]) -> tuple[str, bytes]:
        """Wrap ``data_key`` under the current KEK. Returns (kek_id, wrapped)."""

    def unwrap(self, kek_id: str, wrapped: bytes, *, context: dict[str, str]) -> bytes:
        """Unwrap; raises WrongKek (mismatch) or MissingKek (KEK gone)."""

    def new_kek(self) -> str:
        """Make a new KEK current (where the backend can); returns its id."""

    def describe(self) -> str:
        """One line for ``enclave keys status`` (no secrets)."""


def _aad(context: dict[str, str]) -> bytes:
    return json.dumps(context, sort_keys=True, separators=(",", ":")).encode()


def _describe_context(context: dict[str, str]) -> str:
    return f"data key {context.get('purpose')} v{context.get('version')}"


def _gcm_wrap(kek: bytes, data_key: bytes, context: dict[str, str]) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(kek).encrypt(nonce, data_key, _aad(context))


def _gcm_unwrap(kek: bytes, kek_id: str, wrapped: bytes, context: dict[str, str]) -> bytes:
    try:
        return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], _aad(context))
    except (InvalidTag, ValueError):
        raise WrongKek(
            f"{_describe_context(context)} cannot be unwrapped with KEK {kek_id}: the KEK is "
            "not the one that wrapped it (replaced key file, another deployment's KEK, or "
            "another environment)"
        ) from None


class MemoryKekProvider:
    """In-memory twin: KEKs live in a dict. Two instances never share keys."""

    name = "memory"

    def __init__(self) -> None:
        self._keks: dict[str, bytes] = {}
        self._current: str | None = None

    def current_kek_id(self) -> str:
        return self._current or self.new_kek()

    def new_kek(self) -> str:
        kek_id = f"memory:{len(self._keks) + 1}"
        self._keks[kek_id] = AESGCM.generate_key(bit_length=256)
        self._current = kek_id
        return kek_id

    def wrap(self, data_key: bytes, *, context: dict[str, str]) -> tuple[str, bytes]:
        kek_id = self.current_kek_id()
        return kek_id, _gcm_wrap(self._keks[kek_id], data_key, context)

    def unwrap(self, kek_id: str, wrapped: bytes, *, context: dict[str, str]) -> bytes:
        if kek_id not in self._keks:
            raise MissingKek(f"KEK {kek_id} that wrapped {_describe_context(context)} is not "
                             "held by this in-memory provider")
        return _gcm_unwrap(self._keks[kek_id], kek_id, wrapped, context)

    def describe(self) -> str:
        return f"in-memory KEK provider (current {self._current or 'none'})"


def _inside_git_work_tree(path: Path) -> Path | None:
    """The top of the git work tree containing ``path``, if any (found by walking up)."""
    for parent in path.parents:
        if (parent / ".git").exists():
            return parent
    return None


def _git_ignored(top: Path, path: Path) -> bool:
    git = shutil.which("git")
    if git is None:
        return False  # fail closed: cannot prove it is ignored
    # Fixed argv, no shell; the path is ours (the secrets directory).
    done = subprocess.run(  # noqa: S603
        [git, "-C", str(top), "check-ignore", "-q", str(path)],
        capture_output=True, check=False, timeout=10,
    )
    return done.returncode == 0


def check_secret_location(path: Path, *, data_dir: Path, what: str) -> None:
    """Refuse a secret file inside the data directory or an un-ignored git work tree.

    Raises KekConfigError naming ENCLAVE_SECRETS_DIR.
    """
    resolved = path.resolve()
    data = data_dir.resolve()
    if resolved == data or resolved.is_relative_to(data):
        raise KekConfigError(SECRETS_SETTING, f"{what} {resolved} is inside the data directory "
                             f"{data}; keys must live apart from the data they protect")
    top = _inside_git_work_tree(resolved)
    if top is not None and not _git_ignored(top, resolved):
        raise KekConfigError(SECRETS_SETTING, f"{what} {resolved} is inside the git work tree "
                             f"{top} and not git-ignored; it could be committed")


def check_secret_permissions(path: Path, *, what: str) -> None:
    """Refuse a secret file readable or writable by group or others."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KekConfigError(SECRETS_SETTING, f"{what} {path} has mode {mode:04o}: it is open "
                             "to group or others; run chmod 600 on it")


class FileKekProvider:
    """KEKs as ``kek-<n>.key`` files (base64 of 32 random bytes) in the secrets directory.

    The highest ``n`` is current. Outside live environments the first KEK is created on
    first use (0600 in a 0700 directory); live environments never create one implicitly
    (``enclave keys rotate-kek`` does, explicitly). Every read refuses a file inside the
    data directory, inside an un-ignored git work tree, or open to group/others.
    """

    name = "file"

    def __init__(self, secrets_dir: Path, *, data_dir: Path, create: bool,
                 env: str = "") -> None:
        self.dir = secrets_dir
        self.data_dir = data_dir
        self.create = create
        self.env = env
        self._lock = threading.Lock()
        self._located: set[Path] = set()

    def path_for(self, kek_id: str) -> Path:
        number = kek_id.removeprefix("file:")
        if not kek_id.startswith("file:") or not number.isdigit():
            raise MissingKek(f"KEK id {kek_id!r} is not a file KEK (is ENCLAVE_KEK_PROVIDER "
                             "the provider that wrapped the data keys?)")
        return self.dir / f"kek-{int(number)}.key"

    def _numbers(self) -> list[int]:
        if not self.dir.is_dir():
            return []
        found = []
        for entry in self.dir.glob("kek-*.key"):
            middle = entry.name[4:-4]
            if middle.isdigit():
                found.append(int(middle))
        return sorted(found)

    def current_kek_id(self) -> str:
        numbers = self._numbers()
        if numbers:
            return f"file:{numbers[-1]}"
        if not self.create:
            raise KekConfigError(
                SECRETS_SETTING, f"no KEK file (kek-<n>.key) in {self.dir}; {self.env or 'this'}"
                " environment never creates one implicitly — run `enclave keys rotate-kek`")
        return self.new_kek()

    def new_kek(self) -> str:
        with self._lock:
            numbers = self._numbers()
            kek_id = f"file:{(numbers[-1] + 1) if numbers else 1}"
            path = self.path_for(kek_id)
            check_secret_location(path, data_dir=self.data_dir, what="KEK file")
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = AESGCM.generate_key(bit_length=256)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(base64.b64encode(key).decode() + "\n")
            return kek_id

    def _load(self, kek_id: str, context: dict[str, str] | None = None) -> bytes:
        path = self.path_for(kek_id)
        if path not in self._located:  # the location cannot change; permissions can
            check_secret_location(path, data_dir=self.data_dir, what="KEK file")
            self._located.add(path)
        if not path.is_file():
            used_by = f" that wrapped {_describe_context(context)}" if context else ""
            raise MissingKek(f"KEK {kek_id}{used_by} is missing: {path} does not exist")
        check_secret_permissions(path, what="KEK file")
        try:
            key = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
        except (binascii.Error, ValueError, UnicodeDecodeError):
            key = b""
        if len(key) != KEK_BYTES:
            raise KekError(f"KEK file {path} is malformed: expected base64 of {KEK_BYTES} bytes")
        return key

    def wrap(self, data_key: bytes, *, context: dict[str, str]) -> tuple[str, bytes]:
        kek_id = self.current_kek_id()
        return kek_id, _gcm_wrap(self._load(kek_id), data_key, context)

    def unwrap(self, kek_id: str, wrapped: bytes, *, context: dict[str, str]) -> bytes:
        return _gcm_unwrap(self._load(kek_id, context), kek_id, wrapped, context)

    def kek_files(self) -> list[Path]:
        return [self.dir / f"kek-{n}.key" for n in self._numbers()]

    def describe(self) -> str:
        numbers = self._numbers()
        current = f"file:{numbers[-1]}" if numbers else "none yet"
        return f"file KEK in {self.dir} (current {current}, {len(numbers)} file(s))"


class AwsKmsKekProvider:
    """AWS KMS: data keys are wrapped by ``kms:Encrypt`` with an encryption context.

    The KEK never leaves KMS. ``new_kek`` cannot create keys (operators manage KMS keys and
    their automatic rotation); rotating the KEK rewraps every data key under the configured
    key, which is how data keys move to a new ``ENCLAVE_KMS_KEY_ID``.
    """

    name = "aws-kms"

    def __init__(self, key_id: str, *, region: str | None = None,
                 endpoint_url: str | None = None, client=None) -> None:
        if not key_id:
            raise KekConfigError("ENCLAVE_KMS_KEY_ID", "aws-kms needs the KMS key id or ARN")
        self.key_id = key_id
        self.region = region
        self.endpoint_url = endpoint_url
        self._client = client
        self._arn: str | None = None

    @property
    def client(self):
        if self._client is None:
            import boto3

            self._client = boto3.client("kms", region_name=self.region,
                                        endpoint_url=self.endpoint_url)
        return self._client

    def _call(self, operation: str, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", "")
            if code == "InvalidCiphertextException":
                raise WrongKek("AWS KMS refused to unwrap: the wrapped key does not belong to "
                               f"this KMS key or context ({message or code})") from None
            if code in {"NotFoundException", "KMSInvalidStateException", "DisabledException"}:
                raise MissingKek(f"AWS KMS key unavailable: {code}: {message}") from None
            raise KekError(f"AWS KMS {operation} failed: {code}: {message}") from None
        except BotoCoreError as exc:
            raise KekError(f"AWS KMS {operation} failed: {exc}") from None

    def current_kek_id(self) -> str:
        if self._arn is None:
            self._arn = self._call("describe_key", KeyId=self.key_id)["KeyMetadata"]["Arn"]
        return f"aws-kms:{self._arn}"

    def new_kek(self) -> str:
        self._arn = None
        return self.current_kek_id()

    def wrap(self, data_key: bytes, *, context: dict[str, str]) -> tuple[str, bytes]:
        out = self._call("encrypt", KeyId=self.key_id, Plaintext=data_key,
                         EncryptionContext=context)
        self._arn = out["KeyId"]
        return f"aws-kms:{out['KeyId']}", out["CiphertextBlob"]

    def unwrap(self, kek_id: str, wrapped: bytes, *, context: dict[str, str]) -> bytes:
        arn = kek_id.removeprefix("aws-kms:")
        if not kek_id.startswith("aws-kms:"):
            raise MissingKek(f"KEK id {kek_id!r} is not an AWS KMS key (is "
                             "ENCLAVE_KEK_PROVIDER the provider that wrapped the data keys?)")
        return self._call("decrypt", CiphertextBlob=wrapped, KeyId=arn,
                          EncryptionContext=context)["Plaintext"]

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"AWS KMS key {self.key_id}{where}"


_provider: KekProvider | None = None
_override: Override[KekProvider] = Override()
_provider_lock = threading.Lock()


def provider_from_config(cfg) -> KekProvider:
    """Build the provider named by ``ENCLAVE_KEK_PROVIDER``."""
    if cfg.kek_provider == "aws-kms":
        return AwsKmsKekProvider(cfg.kms_key_id or "", region=cfg.aws_region,
                                 endpoint_url=cfg.aws_endpoint_url)
    return FileKekProvider(cfg.secrets_dir, data_dir=cfg.data_dir, create=not cfg.is_live,
                           env=cfg.env)


def get_provider() -> KekProvider:
    """The process's KEK provider (a test override wins)."""
    global _provider
    if _override.value is not None:
        return _override.value
    with _provider_lock:
        if _provider is None:
            from django.conf import settings

            _provider = provider_from_config(settings.CONFIG)
        return _provider


def use_provider(provider: KekProvider):
    """Tests: use ``provider`` for the duration of the block."""
    return _override.use(provider)
