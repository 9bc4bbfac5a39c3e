from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "enclave.identity"
    label = "identity"
