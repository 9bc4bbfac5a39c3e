from django.apps import AppConfig


class AudienceConfig(AppConfig):
    name = "enclave.audience"
    label = "audience"
