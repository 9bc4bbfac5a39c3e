from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "enclave.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        from enclave.core import audit
        from enclave.webhooks.events import on_audit

        # Every audited change of a kind an endpoint can subscribe to becomes a delivery
        # in the same transaction.
        audit.add_listener(on_audit)
