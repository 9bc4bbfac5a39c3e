from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    name = "enclave.apikeys"
    label = "apikeys"
    verbose_name = "API keys"

    def ready(self) -> None:
        from enclave.apikeys import errors, signals
        from enclave.apikeys.tokens import find_tokens
        from enclave.core.actions import credential_exposed, register_credential_finder
        from enclave.keys.references import register_reference_counter

        errors.register_problem_types()
        credential_exposed.connect(signals.on_credential_exposed,
                                   dispatch_uid="enclave.apikeys.on_credential_exposed")
        # Keys identify themselves: one in any header, the query string or the path of a
        # plain-HTTP request is found, recorded and revoked, not only in Authorization.
        register_credential_finder(find_tokens)
        register_reference_counter("apikeys.ApiKey.secret_mac", signals.count_key_hashes)
