"""Tenant-scoped, permission-checked reads of people.

Every query filters by the principal's account in the same query; another account's
person looks exactly like a missing one (Http404). A missing permission raises
``access.principal.NotAuthorized`` (a PermissionDenied: 403).
"""

from __future__ import annotations

from django.http import Http404

from enclave.access.permissions import Permission
from enclave.access.principal import Principal, authorize
from enclave.people.models import FieldDefinition, Person


def people_of(principal: Principal, *, include_archived: bool = False):
    """The account's people (needs ``PEOPLE_READ``)."""
    authorize(principal, Permission.PEOPLE_READ)
    rows = Person.objects.filter(account_id=principal.account_id)
    return rows if include_archived else rows.filter(archived_at__isnull=True)


def count_people(principal: Principal) -> int:
    """How many (unarchived) people the account has — the aggregate any member of the
    account may see, even without ``PEOPLE_READ``."""
    if principal.account_id is None:
        return 0
    return Person.objects.filter(account_id=principal.account_id,
                                 archived_at__isnull=True).count()


def access_person(principal: Principal, person_id, *, for_write: bool = False) -> Person:
    """One person of the principal's account; Http404 if missing or another account's."""
    authorize(principal, Permission.PEOPLE_WRITE if for_write else Permission.PEOPLE_READ)
    try:
        person_id = int(person_id)
    except (TypeError, ValueError):
        raise Http404("No such person.") from None
    person = Person.objects.filter(account_id=principal.account_id, pk=person_id).first()
    if person is None:
        raise Http404("No such person.")
    return person


def field_definitions(account_id: int) -> list[FieldDefinition]:
    return list(FieldDefinition.objects.filter(account_id=account_id).order_by("key"))
