"""The models and the migrations agree: a model change without its migration would make
the first `migrate` on a user's machine diverge from the tested schema."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_every_model_change_has_its_migration():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:
        raise AssertionError(f"missing migrations:\n{out.getvalue()}") from None
