"""Tenant-scoped, permission-checked reads of people.

Every query filters by the member's account in the same query; another account's person
looks exactly like a missing one (Http404). Permission failures raise PermissionDenied.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404

from enclave.accounts.actions import membership_of
from enclave.accounts.permissions import permissions_of
from enclave.people.models import FieldDefinition, Person


@dataclass(frozen=True)
class MemberContext:
    """Who is asking, in which account, with which permissions."""

    member: object
    account: object
    membership: object
    perms: frozenset

    @property
    def account_id(self) -> int:
        return self.account.pk

    def can(self, codename: str) -> bool:
        return codename in self.perms


def context_for(member, account) -> MemberContext:
    """The member's context in ``account``; PermissionDenied if not a member."""
    membership = membership_of(member, getattr(account, "pk", None))
    if membership is None:
        raise PermissionDenied("Choose an account you are a member of.")
    return MemberContext(member, membership.account, membership, permissions_of(membership))


def require(ctx: MemberContext, codename: str) -> None:
    if not ctx.can(codename):
        raise PermissionDenied(f"Your role does not include {codename}.")


def people_of(ctx: MemberContext, *, include_archived: bool = False):
    """The account's people (needs ``people.read``)."""
    require(ctx, "people.read")
    rows = Person.objects.filter(account_id=ctx.account_id)
    return rows if include_archived else rows.filter(archived_at__isnull=True)


def access_person(ctx: MemberContext, person_id, *, for_write: bool = False) -> Person:
    """One person of the member's account; Http404 if missing or another account's."""
    require(ctx, "people.write" if for_write else "people.read")
    try:
        person_id = int(person_id)
    except (TypeError, ValueError):
        raise Http404("No such person.") from None
    person = Person.objects.filter(account_id=ctx.account_id, pk=person_id).first()
    if person is None:
        raise Http404("No such person.")
    return person


def field_definitions(account_id: int) -> list[FieldDefinition]:
    return list(FieldDefinition.objects.filter(account_id=account_id).order_by("key"))
