from django.apps import AppConfig


class ScanningConfig(AppConfig):
    name = "enclave.scanning"
    label = "scanning"
    verbose_name = "Dependency and TLS scanning"
