from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "enclave.identity"
    label = "identity"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from enclave.identity import sessions

        user_logged_in.connect(sessions.on_login, dispatch_uid="enclave.identity.on_login")
        user_logged_out.connect(sessions.on_logout, dispatch_uid="enclave.identity.on_logout")
