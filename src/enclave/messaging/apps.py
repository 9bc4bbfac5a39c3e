from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "enclave.messaging"
    label = "messaging"
