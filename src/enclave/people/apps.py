from django.apps import AppConfig


class PeopleConfig(AppConfig):
    name = "enclave.people"
    label = "people"
