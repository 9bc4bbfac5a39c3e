from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "enclave.events"
    label = "events"
    verbose_name = "Events ingest"
