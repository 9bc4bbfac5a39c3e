"""Test world for people, team and audit tests: one member per role, a second tenant."""

from __future__ import annotations

from enclave.accounts.models import Account, Membership
from enclave.identity.models import Member
from enclave.people.models import Person
from tests.conftest import HttpsClient
from tests.principals import acting

# Distinctive values, so a page can be searched for each (and for its masked form).
PERSON = {
    "email": "xq.person@mailbox.example",
    "first_name": "Xaviera",
    "last_name": "Quimbly",
    "phone": "+44 20 7946 0123",
    "address": "221B Bakerloo Street",
    "ip": "203.0.113.77",
    "company": "Globex Unique Corp",
    "external_id": "EXT-98765-ZZ",
}
MASKED = {
    "email": "x***@m***.example",
    "first_name": "X***",
    "last_name": "Q***",
    "phone": "+44 ••• ••• 123",
}
ROLES = ("owner", "admin", "user", "analyst", "viewer")


def new_member(email: str, account: Account, role: str) -> Member:
    member = Member(email=email)
    member.set_unusable_password()
    member.save()
    Membership.objects.create(member=member, account=account, role=role)
    return member


def signed_in(member: Member) -> HttpsClient:
    client = HttpsClient()
    client.force_login(member)
    return client


class World:
    """Account A with one member per role and a person; account B, another tenant."""

    def __init__(self) -> None:
        self.account = Account.objects.create(name="Acme")
        self.members = {role: new_member(f"{role}@acme.example", self.account, role)
                        for role in ROLES}
        self.person = Person.objects.create(account=self.account, country="GB", **PERSON)
        self.other = Account.objects.create(name="Other Tenant")
        self.other_owner = new_member("owner@other.example", self.other, "owner")
        self.other_person = Person.objects.create(account=self.other,
                                                  email="someone@other.example")

    def membership(self, role: str) -> Membership:
        return Membership.objects.get(member=self.members[role], account=self.account)

    def client(self, role: str) -> HttpsClient:
        return signed_in(self.members[role])

    def actor(self, role: str):
        """The role's member acting in account A (an ``access.Principal``)."""
        return acting(self.members[role], self.account)

    def other_actor(self):
        """Account B's owner acting in account B."""
        return acting(self.other_owner, self.other)
