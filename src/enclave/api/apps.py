from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "enclave.api"
    label = "api"
