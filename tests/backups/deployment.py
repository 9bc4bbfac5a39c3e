"""A migrated SQLite deployment in its own var dir, for tests that run the real CLI."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ENCLAVE = [sys.executable, "-m", "enclave"]


def migrated_deployment(var: Path, email: str, name: str) -> dict:
    """Migrate a fresh deployment under ``var`` holding one member; return its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    env.update({"ENCLAVE_ENV": "test", "ENCLAVE_VAR_DIR": str(var),
                "ENCLAVE_BACKUP_DIR": str(var / "backups")})
    subprocess.run([*ENCLAVE, "manage", "migrate", "-v0"], env=env, check=True, timeout=300)
    db = sqlite3.connect(var / "data" / "enclave.sqlite3")
    db.execute("INSERT INTO identity_member (email, name, is_active, created_at, password) "
               "VALUES (?, ?, 1, '2026-01-01', '!')", (email, name))
    db.commit()
    db.close()
    return env
