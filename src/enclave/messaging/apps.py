from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "enclave.messaging"
    label = "messaging"

    def ready(self) -> None:
        from enclave.keys.references import register_reference_counter
        from enclave.messaging.actions.messages import count_idempotency_macs

        # A transactional message's idempotency key is a MAC under ``tokens``: retiring
        # its version would let a retry send the message again.
        register_reference_counter("messaging.TransactionalMessage.key_mac",
                                   count_idempotency_macs)
        # Tracked broadcasts' links are signed under ``tokens``: retiring the version
        # would break the links of mail sent in the last ``tracking.LINKS_KEPT``.
        from enclave.messaging.tracking import count_tracking_keys

        register_reference_counter("messaging.Broadcast.tracking_key_version",
                                   count_tracking_keys)
