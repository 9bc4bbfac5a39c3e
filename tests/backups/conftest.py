"""Backup fixtures: a local target in a temporary directory, members to back up, a moto S3."""

from __future__ import annotations

import pytest
from django.db import connection

from enclave.backups import databases, keystore, services
from enclave.identity.models import Member
from tests.moto import moto_server


@pytest.fixture(autouse=True)
def key_dir(tmp_path):
    """Backup keys of each test in its own directory (they are files, not rows)."""
    with keystore.use_directory(tmp_path / "secrets" / "backup-keys") as path:
        yield path


@pytest.fixture
def target(tmp_path):
    """A local-directory target, installed as the configured one."""
    with services.use_target(services.LocalDirectoryTarget(tmp_path / "backups")) as t:
        yield t


@pytest.fixture
def members():
    return [Member.objects.create(email=f"person{i}@example.com", name=f"Person {i}")
            for i in range(3)]


@pytest.fixture
def destination(tmp_path):
    """Where a restore goes: a new SQLite file, or a new PostgreSQL database (dropped after)."""
    if connection.vendor == "sqlite":
        yield str(tmp_path / "restored.sqlite3")
        return
    name = f"{connection.settings_dict['NAME']}_restored"[:60]
    yield name
    databases.drop_pg_database(name)


def member_rows(conn=connection) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute("SELECT id, email, name, is_active FROM identity_member ORDER BY id")
        return [tuple(r) for r in cur.fetchall()]


@pytest.fixture(scope="session")
def moto_s3_url():
    """A real moto server (S3 API over HTTP) on localhost."""
    with moto_server() as url:
        yield url


@pytest.fixture
def s3_target(moto_s3_url, monkeypatch):
    """An S3 target on a fresh bucket, dummy credentials, installed as the configured one."""
    import secrets

    import boto3

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"enclave-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=moto_s3_url, region_name="us-east-1").create_bucket(
        Bucket=bucket)
    with services.use_target(services.S3Target(bucket, endpoint_url=moto_s3_url)) as t:
        yield t
