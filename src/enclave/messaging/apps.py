from django.apps import AppConfig


def count_monthly_sends(account_id: int) -> int:
    """Broadcast recipients queued and transactional messages made this calendar month
    (UTC), for the plan's monthly sends."""
    from django.db.models import Sum

    from enclave.billing.entitlements import month_start
    from enclave.messaging.models import Broadcast, TransactionalMessage

    since = month_start()
    broadcasts = Broadcast.objects.filter(account_id=account_id, queued_at__gte=since
                                          ).aggregate(n=Sum("recipients"))["n"] or 0
    return broadcasts + TransactionalMessage.objects.filter(
        account_id=account_id, created_at__gte=since).count()


def hold_broadcasts(account_id: int) -> int:
    from enclave.messaging.actions import do_hold_account_broadcasts

    return do_hold_account_broadcasts(account_id, reason="billing overdue")


class MessagingConfig(AppConfig):
    name = "enclave.messaging"
    label = "messaging"

    def ready(self) -> None:
        from enclave.billing import entitlements
        from enclave.keys.references import register_reference_counter

        # The plan's monthly sends; an overdue subscription's sending pause holds the
        # account's queued broadcasts (enclave.billing).
        entitlements.register_usage(entitlements.MONTHLY_SENDS, count_monthly_sends)
        entitlements.on_sending_paused(hold_broadcasts)
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
