"""One trigger per keyring audit event type, for tests/core/test_audit.py."""

from __future__ import annotations

import contextlib

from enclave.core.models import AuditEventType


@contextlib.contextmanager
def _memory_keyring():
    from enclave.keys import keyring, services
    from enclave.keys.models import DataKey

    with services.use_provider(services.MemoryKekProvider()):
        DataKey.objects.all().delete()
        keyring.clear_cache()
        try:
            yield
        finally:
            keyring.clear_cache()


def trigger_data_key_created():
    from enclave.keys.actions import do_rotate_data_key

    with _memory_keyring():
        do_rotate_data_key("logs", actor=None)


def trigger_data_key_rotated():
    from enclave.keys.actions import do_rotate_data_key

    with _memory_keyring():
        do_rotate_data_key("logs", actor=None)
        do_rotate_data_key("logs", actor=None)


def trigger_kek_rotated():
    from enclave.keys.actions import do_rotate_kek, ensure_data_keys

    with _memory_keyring():
        ensure_data_keys()
        do_rotate_kek(actor=None)


def trigger_key_version_retired():
    from enclave.keys.actions import do_retire_key_version, do_rotate_data_key

    with _memory_keyring():
        do_rotate_data_key("backups", actor=None)
        do_rotate_data_key("backups", actor=None)
        do_retire_key_version("backups", 1, actor=None)


def trigger_keys_reencrypted():
    from enclave.keys.reencrypt import do_reencrypt_values

    with _memory_keyring():
        do_reencrypt_values(actor=None)


TRIGGERS = {
    AuditEventType.DATA_KEY_CREATED: lambda f: trigger_data_key_created(),
    AuditEventType.DATA_KEY_ROTATED: lambda f: trigger_data_key_rotated(),
    AuditEventType.KEK_ROTATED: lambda f: trigger_kek_rotated(),
    AuditEventType.KEY_VERSION_RETIRED: lambda f: trigger_key_version_retired(),
    AuditEventType.KEYS_REENCRYPTED: lambda f: trigger_keys_reencrypted(),
}
