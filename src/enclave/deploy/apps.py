from django.apps import AppConfig


class DeployConfig(AppConfig):
    # No models: installed so the controls registry imports enclave.deploy.controls.
    name = "enclave.deploy"
    label = "deploy"
    verbose_name = "n-tier deployment"
