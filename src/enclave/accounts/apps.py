from django.apps import AppConfig


def count_members(account_id: int) -> int:
    """Members and invitations still open, for the plan's members limit."""
    from enclave.accounts.models import Invitation, Membership
    from enclave.core import clock

    pending = Invitation.objects.filter(account_id=account_id, accepted_at__isnull=True,
                                        expires_at__gt=clock.now()).count()
    return Membership.objects.filter(account_id=account_id).count() + pending


class AccountsConfig(AppConfig):
    name = "enclave.accounts"
    label = "accounts"

    def ready(self) -> None:
        from enclave.billing import entitlements

        entitlements.register_usage(entitlements.MEMBERS, count_members)
