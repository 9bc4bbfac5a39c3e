from django.apps import AppConfig


def count_people(account_id: int) -> int:
    """People an account holds for its plan's limit: archived people do not count."""
    from enclave.people.models import Person

    return Person.objects.filter(account_id=account_id, archived_at__isnull=True).count()


class PeopleConfig(AppConfig):
    name = "enclave.people"
    label = "people"

    def ready(self) -> None:
        from enclave.billing import entitlements

        entitlements.register_usage(entitlements.PEOPLE, count_people)
