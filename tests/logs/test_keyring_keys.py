"""The log store's keyring keys leave no database connection open on a stray thread."""

from __future__ import annotations

import threading

import pytest

from enclave.logs.services import KeyringLogKeys


def _on_a_thread(work):
    from django.db import connection

    seen = {}

    def run():
        try:
            seen["result"] = work()
            seen["open_after"] = connection.connection is not None
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return seen


@pytest.mark.django_db(transaction=True)
def test_keyring_use_off_the_main_thread_closes_the_connection_it_opened():
    from django.db import connection

    if connection.vendor == "sqlite":
        pytest.skip("SQLite's in-memory test database ignores close(); the PostgreSQL "
                    "pass runs this")
    keys = KeyringLogKeys()
    seen = _on_a_thread(lambda: keys.verify(b"segment", keys.mac(b"segment")))
    assert seen == {"result": True, "open_after": False}


@pytest.mark.django_db(transaction=True)
def test_keyring_use_off_the_main_thread_keeps_a_connection_it_did_not_open():
    from django.db import connection

    keys = KeyringLogKeys()

    def work():
        connection.ensure_connection()
        return keys.verify(b"segment", keys.mac(b"segment"))

    assert _on_a_thread(work) == {"result": True, "open_after": True}
