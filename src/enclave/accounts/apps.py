from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "enclave.accounts"
    label = "accounts"
