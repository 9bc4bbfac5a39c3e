"""Accounts and API keys in a running ``enclave serve`` (the ``live_with_accounts``
deployment of tests/conftest.py): an owner and account written into its SQLite database,
keys made with its own CLI."""

from __future__ import annotations

import sqlite3
import subprocess
import sys


def enclave(live, *args: str) -> subprocess.CompletedProcess:
    """Run the ``enclave`` CLI against ``live``."""
    return subprocess.run([sys.executable, "-m", "enclave", *args], env=live.env,
                          capture_output=True, text=True, timeout=120, check=False)


def add_owner_account(live, email: str, name: str) -> int:
    """A new account whose owner is a new member ``email`` (no usable password); its id."""
    db = sqlite3.connect(live.var_dir / "data" / "enclave.sqlite3", timeout=30)
    with db:
        db.execute("INSERT INTO identity_member (email, name, is_active, created_at, password) "
                   "VALUES (?, ?, 1, '2026-01-01', '!')", (email, name))
        cursor = db.execute("INSERT INTO accounts_account (name, created_at, "
                            "idle_timeout_minutes, require_mfa) "
                            "VALUES (?, '2026-01-01', 30, 0)", (name,))
        account_id = cursor.lastrowid
        member_id = db.execute("SELECT id FROM identity_member WHERE email = ?",
                               (email,)).fetchone()[0]
        db.execute("INSERT INTO accounts_membership (member_id, account_id, role, created_at) "
                   "VALUES (?, ?, 'owner', '2026-01-01')", (member_id, account_id))
    db.close()
    return account_id


def cli_key(live, account_id: int, email: str, scopes: str) -> str:
    """A new key of ``account_id`` made by ``email`` with the CLI (``scopes``: comma list)."""
    result = enclave(live, "apikeys", "create", "--account", str(account_id), "--member",
                     email, "--scopes", scopes, "--name", "live")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
