from django.apps import AppConfig


class LogsConfig(AppConfig):
    name = "enclave.logs"
    label = "logs"
    verbose_name = "Redacted, encrypted logs"

    def ready(self) -> None:
        from enclave.logs import signals

        signals.connect()
