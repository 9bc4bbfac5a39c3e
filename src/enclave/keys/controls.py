"""Security controls contributed by the keyring (KEY-1..KEY-3)."""

from __future__ import annotations

import re
import stat

from django.apps import apps
from django.conf import settings
from django.db import models

from enclave.core.controls import Outcome, Probe, control, failed, passed
from enclave.keys import services, status
from enclave.keys.errors import KekConfigError

# Field names that suggest a secret; such text/binary columns must be encrypted or hashed.
SECRET_NAME = re.compile(r"secret|token|totp|api_?key|private_?key|password|passphrase|otp_")
# Suffixes that say the column holds no secret value itself (a keyed hash, a public prefix,
# a key version, a timestamp...).
NOT_SECRET_SUFFIX = re.compile(
    r"(_hash|_hmac|_mac|_digest|_fingerprint|_prefix|_public_id|_version|_at|_id|_count"
    r"|_last4|_hint|_kind|_type|_name|_scopes)$")
_TEXT_FIELDS = (models.CharField, models.TextField, models.BinaryField, models.JSONField)
# "app_label.Model.field" -> why it is not a plaintext secret. Apps may add entries.
NOT_SECRET: dict[str, str] = {}


def declare_not_secret(qualified_name: str, reason: str) -> None:
    """Tell KEY-3 that a column whose name looks secret holds no secret (say why)."""
    NOT_SECRET[qualified_name] = reason


@control(
    "KEY-1",
    claim="Every primary data key and the current KEK are younger than "
          "ENCLAVE_KEY_MAX_AGE_DAYS",
    public="Encryption keys are rotated on a fixed schedule",
)
def check_key_age(probe: Probe) -> Outcome:
    cfg = settings.CONFIG
    late = status.over_age(cfg)
    if late:
        return failed(f"older than {cfg.key_max_age_days} days: " + "; ".join(late))
    kek = status.current_kek_record()
    return passed(f"all primary data keys and KEK {kek.kek_id if kek else '(none)'} are within "
                  f"{cfg.key_max_age_days} days")


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@control(
    "KEY-2",
    claim="The secrets directory is separate from data and code, 0700, and its files 0600",
    public="Encryption keys are stored apart from the data and code they protect",
)
def check_secrets_dir(probe: Probe) -> Outcome:
    cfg = settings.CONFIG
    path = cfg.secrets_dir
    if not path.is_dir():
        return failed(f"secrets directory {path} does not exist")
    problems = []
    if _mode(path) & 0o077:
        problems.append(f"{path} has mode {_mode(path):04o} (want 0700)")
    data = cfg.data_dir.resolve()
    if data.is_relative_to(path.resolve()):
        problems.append(f"the data directory {data} is inside the secrets directory")
    try:
        services.check_secret_location(path / "kek-1.key", data_dir=cfg.data_dir,
                                       what="secrets directory entry")
    except KekConfigError as exc:
        problems.append(str(exc).removeprefix(f"{services.SECRETS_SETTING}: "))
    for entry in sorted(path.iterdir()):
        if entry.is_file() and _mode(entry) & 0o077:
            problems.append(f"{entry.name} has mode {_mode(entry):04o} (want 0600)")
    if problems:
        return failed("; ".join(problems))
    return passed(f"{path}: 0700, files 0600, outside the data directory and any "
                  "un-ignored git work tree")


def plaintext_secret_columns(candidates=None) -> list[str]:
    """Text/binary columns of Enclave models (or of ``candidates``) whose names look secret
    but are not encrypted, hashed (by name suffix) or declared not secret."""
    from enclave.keys.fields import EncryptedFieldMixin

    found = []
    user_model = settings.AUTH_USER_MODEL
    if candidates is None:
        candidates = [m for m in apps.get_models() if m.__module__.startswith("enclave.")]
    for model in candidates:
        for fld in model._meta.concrete_fields:
            name = f"{model._meta.label}.{fld.name}"
            if isinstance(fld, EncryptedFieldMixin) or not isinstance(fld, _TEXT_FIELDS):
                continue
            if not SECRET_NAME.search(fld.name) or NOT_SECRET_SUFFIX.search(fld.name):
                continue
            if name in NOT_SECRET or (model._meta.label == user_model
                                      and fld.name == "password"):
                continue  # the user model's password holds Django's argon2id hash
            found.append(name)
    return found


@control(
    "KEY-3",
    claim="No model stores a secret-named column in plaintext (encrypted fields or keyed "
          "hashes only)",
    public="Secrets such as MFA seeds and webhook secrets are encrypted in the database",
)
def check_no_plaintext_secrets(probe: Probe) -> Outcome:
    from enclave.keys.fields import encrypted_fields

    found = plaintext_secret_columns()
    if found:
        return failed("plaintext secret-like columns: " + ", ".join(found))
    encrypted = [f"{m._meta.label}.{f.name}" for m, f in encrypted_fields()]
    return passed(f"{len(encrypted)} encrypted column(s)"
                  + (f" ({', '.join(encrypted)})" if encrypted else "")
                  + "; no plaintext secret-named columns")
