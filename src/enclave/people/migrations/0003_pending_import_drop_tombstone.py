"""Pending CSV imports move out of the session into an encrypted, expiring row; person
tombstones live only in ``backups.ErasureTombstone`` (copied by backups 0003)."""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import enclave.core.clock
import enclave.keys.fields


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0003_audit_append_only"),
        ("backups", "0003_tombstone_subjects"),
        ("people", "0002_search_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.DeleteModel(name="ErasureTombstone"),
        migrations.CreateModel(
            name="PendingImport",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("row_id", models.UUIDField(default=uuid.uuid4, editable=False,
                                            unique=True)),
                ("data", enclave.keys.fields.EncryptedTextField()),
                ("columns", models.JSONField(default=list)),
                ("rows", models.PositiveIntegerField(default=0)),
                ("created_at", models.DateTimeField(default=enclave.core.clock.now)),
                ("expires_at", models.DateTimeField()),
                ("account", models.ForeignKey(
                    on_delete=django.db.models.deletion.CASCADE, related_name="+",
                    to="accounts.account")),
                ("member", models.ForeignKey(
                    on_delete=django.db.models.deletion.CASCADE, related_name="+",
                    to=settings.AUTH_USER_MODEL)),
            ],
        ),
    ]
