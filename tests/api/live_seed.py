"""Seed a live deployment for API tests: ``python -m tests.api.live_seed <scopes>`` (run with
the deployment's environment) creates an account, its owner, a few people, custom fields,
tags and segments — all through the actions — and prints a new API key's token (once)."""

from __future__ import annotations

import os
import sys


def seed(scopes: str) -> str:
    from django.db import transaction

    from enclave.accounts.models import Account, Membership
    from enclave.apikeys.actions import do_create_api_key
    from enclave.audience.actions import do_add_segment_people, do_create_segment
    from enclave.identity.models import Member
    from enclave.people.actions import do_create_person, do_define_field
    from tests.principals import acting

    with transaction.atomic():
        account = Account.objects.create(name="Contract Test")
        owner = Member(email="owner@contract.example")
        owner.set_unusable_password()
        owner.save()
        Membership.objects.create(member=owner, account=account, role="owner")
        owner = acting(owner, account)
    do_define_field(account, "tier", "Tier", "select", options=["gold", "silver"],
                    pd_class="none", actor=owner)
    do_define_field(account, "score", "Score", "number", pd_class="personal", actor=owner)
    do_define_field(account, "since", "Customer since", "date", pd_class="none", actor=owner)
    do_define_field(account, "vip", "VIP", "boolean", pd_class="none", actor=owner)
    do_define_field(account, "nickname", "Nickname", "text", pd_class="personal",
                    actor=owner)
    people = [do_create_person(account, {"email": f"p{i}@contract.example",
                                         "first_name": f"P{i}", "custom.tier": "gold",
                                         "custom.score": i, "tags": ["seed", f"t{i}"]},
                               actor=owner) for i in range(5)]
    listed = do_create_segment(account, "Seed list", "static", actor=owner)
    do_add_segment_people(listed, [p.pk for p in people[:2]], actor=owner)
    do_create_segment(account, "Gold", "dynamic", {"type": "group", "match": "all", "rules": [
        {"type": "field", "field": "custom.tier", "op": "equals", "value": "gold"},
        {"type": "segment", "segment": listed.pk, "member": False}]}, actor=owner)
    with transaction.atomic():
        token, _ = do_create_api_key(account, name="contract", scopes=scopes,
                                     role_ceiling="owner", actor=owner)
    return token


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enclave.settings")
    import django

    django.setup()
    print(seed(sys.argv[1]))  # noqa: T201 — the caller reads the token from stdout
    return 0


if __name__ == "__main__":
    sys.exit(main())
