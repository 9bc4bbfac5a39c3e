from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "enclave.api"
    label = "api"

    def ready(self) -> None:
        from enclave.api import schema  # noqa: F401  (registers the OpenAPI extension)
