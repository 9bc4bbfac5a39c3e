from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    name = "enclave.apikeys"
    label = "apikeys"
    verbose_name = "API keys"

    def ready(self) -> None:
        from enclave.apikeys import errors, signals
        from enclave.core.actions import credential_exposed
        from enclave.keys.keyring import register_reference_counter

        errors.register_problem_types()
        credential_exposed.connect(signals.on_credential_exposed,
                                   dispatch_uid="enclave.apikeys.on_credential_exposed")
        register_reference_counter("apikeys.ApiKey.secret_mac", signals.count_key_hashes)
