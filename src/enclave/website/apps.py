from django.apps import AppConfig


class WebsiteConfig(AppConfig):
    name = "enclave.website"
    label = "website"

    def ready(self) -> None:
        from enclave.website import checks  # noqa: F401 — registers system checks
