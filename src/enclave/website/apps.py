from django.apps import AppConfig


class WebsiteConfig(AppConfig):
    name = "enclave.website"
    label = "website"
