from django.apps import AppConfig


class ServerConfig(AppConfig):
    name = "enclave.server"
    label = "server"
    verbose_name = "Embedded HTTPS server"
