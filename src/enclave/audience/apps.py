from django.apps import AppConfig


class AudienceConfig(AppConfig):
    name = "enclave.audience"
    label = "audience"

    def ready(self) -> None:
        from enclave.audience import subscriptions
        from enclave.audience.actions import LISTS
        from enclave.keys.references import register_reference_counter
        from enclave.people.actions import register_erasure_hook, register_import_destination

        # An erased person's address is suppressed (inside the erasure's transaction).
        register_erasure_hook(subscriptions.on_person_erased)
        # A people import may also put everyone in its file on a static list.
        register_import_destination(LISTS)
        # Suppression MACs are checked under every key version that made one: the keyring
        # must not retire a "tokens" version while a suppression still uses it.
        register_reference_counter("audience.Suppression.email_mac",
                                   subscriptions.count_suppression_macs)
