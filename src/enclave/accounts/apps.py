from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "enclave.accounts"
    label = "accounts"

    def ready(self) -> None:
        from enclave.accounts import auditlog

        auditlog.connect()  # the audit log is append-only (see auditlog.py)
