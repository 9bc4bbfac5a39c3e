"""Keyring fixtures: a table with encrypted columns, an in-memory keyring, a moto KMS."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, models

from enclave.keys import keyring, services
from enclave.keys.fields import EncryptedBinaryField, EncryptedTextField, track_model
from enclave.keys.models import DataKey
from tests.moto import moto_server


class SecretHolder(models.Model):
    """A stand-in for any model with secrets (not an installed app: tests create its table)."""

    row_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    secret = EncryptedTextField(null=True)
    blob = EncryptedBinaryField(null=True)
    note = models.CharField(max_length=20, default="")

    class Meta:
        app_label = "keys_tests"
        db_table = "keys_tests_secretholder"


@pytest.fixture(scope="session")
def secret_table(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), connection.schema_editor() as editor:
        editor.create_model(SecretHolder)
    return SecretHolder


@pytest.fixture
def holder(secret_table):
    """The SecretHolder model, counted among the deployment's encrypted fields."""
    track_model(secret_table)
    yield secret_table
    track_model(secret_table, enabled=False)


@pytest.fixture
def memory_keyring():
    """A fresh keyring on an in-memory KEK (the test transaction rolls the rows back)."""
    provider = services.MemoryKekProvider()
    with services.use_provider(provider):
        DataKey.objects.all().delete()
        keyring.clear_cache()
        yield provider
    keyring.clear_cache()


@pytest.fixture
def file_keyring(tmp_path, settings):
    """A fresh keyring on a file KEK in a private temporary secrets directory."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    provider = services.FileKekProvider(secrets_dir, data_dir=tmp_path / "data", create=True,
                                        env="test")
    with services.use_provider(provider):
        DataKey.objects.all().delete()
        keyring.clear_cache()
        yield provider
    keyring.clear_cache()


@pytest.fixture(scope="session")
def moto_url():
    """A real moto server (AWS API over HTTP) on localhost."""
    with moto_server() as url:
        yield url


@pytest.fixture
def aws_env(monkeypatch):
    """Dummy credentials, so boto3 never looks for real ones."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def kms_key(moto_url, aws_env) -> str:
    import boto3

    client = boto3.client("kms", region_name="us-east-1", endpoint_url=moto_url)
    return client.create_key(Description="enclave test KEK")["KeyMetadata"]["KeyId"]
