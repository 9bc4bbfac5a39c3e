from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "enclave.backups"
    label = "backups"
    verbose_name = "Enclave backups"

    def ready(self) -> None:
        from enclave.backups import controls  # noqa: F401 — registers BAK-1..3
