from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    name = "enclave.apikeys"
    label = "apikeys"
    verbose_name = "API keys"
