from __future__ import annotations

import logging
import shutil

import pytest
from django.conf import settings

from enclave.logs.pipeline import flush_stores
from enclave.logs.store import default_store


def empty_store():
    """The deployment's log store, emptied of earlier tests' segments (some written
    under a travelled clock, which a retention cut-off would not reach)."""
    flush_stores()
    directory = settings.CONFIG.var_dir / "logs"
    shutil.rmtree(directory, ignore_errors=True)
    for handler in logging.getLogger().handlers:
        if hasattr(handler, "store"):
            handler.store._tail = handler.store._header = None
    return default_store()


@pytest.fixture
def store():
    """The deployment's log store, emptied before the test."""
    yield empty_store()
    flush_stores()


def stored_text(store) -> str:
    flush_stores()
    errors: list[str] = []
    text = "\n".join(str(r) for r in store.records(errors=errors))
    assert not errors, errors
    return text
