from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "enclave.keys"
    label = "keys"
    verbose_name = "Enclave keyring"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from enclave.keys import (
            checks,  # noqa: F401 — registers system checks
            keyring,
        )
        from enclave.keys.actions import create_first_key, ensure_data_keys_after_migrate

        keyring.register_first_key_factory(create_first_key)
        post_migrate.connect(ensure_data_keys_after_migrate, sender=self)
