"""Store every member's address in canonical form (NFKC + case folding).

Members are looked up by the canonical form compared exactly; rows written before this
kept the address as typed ("Jane@Example.com"). This rewrites them. Two members whose
addresses differ but fold to the same one (possible only through exotic domains, e.g. a
fullwidth or "ß" spelling beside the plain one; the case-insensitive unique constraint
already rules out ASCII case variants) cannot both keep their login: the migration then
stops and names their ids, for the operator to give one of them another address, rather
than guessing which one owns it.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict

from django.db import migrations


def _canonical(email: str) -> str:
    # Frozen copy of enclave.core.validation.canonical_email as of this migration.
    folded = unicodedata.normalize("NFKC", email).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


class SharedAddress(Exception):
    """Two or more members share one address under Unicode case folding."""


def canonicalize(apps, schema_editor) -> None:
    member_model = apps.get_model("identity", "Member")
    rows = list(member_model.objects.values_list("pk", "email"))
    owners = defaultdict(list)
    for pk, email in rows:
        owners[_canonical(email)].append(pk)
    shared = [sorted(pks) for pks in owners.values() if len(pks) > 1]
    if shared:
        groups = "; ".join(", ".join(str(pk) for pk in group) for group in sorted(shared))
        raise SharedAddress(
            "members with addresses that are the same under Unicode case folding (ids: "
            f"{groups}); give all but one of each group another address, then migrate again")
    for pk, email in rows:
        canonical = _canonical(email)
        if canonical != email:
            member_model.objects.filter(pk=pk).update(email=canonical)


class Migration(migrations.Migration):

    dependencies = [
        ("identity", "0002_signuptoken_throttlecounter_passwordresettoken_and_more"),
    ]

    operations = [
        # Irreversible in meaning (the typed spelling is gone), harmless to step over.
        migrations.RunPython(canonicalize, migrations.RunPython.noop, elidable=False),
    ]
