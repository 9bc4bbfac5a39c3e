from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "enclave.compliance"
    label = "compliance"
