from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "enclave.core"
    label = "core"
    verbose_name = "Enclave core"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from enclave.core import auditlog, checks, environment  # noqa: F401 — registers system checks

        post_migrate.connect(environment.stamp_after_migrate, sender=self)
        auditlog.connect()  # the audit log is append-only (see auditlog.py)
