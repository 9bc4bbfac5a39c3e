import django.db.models.deletion
from django.db import migrations, models

import enclave.core.clock


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Role",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=40)),
                ("permissions", models.JSONField(default=list)),
                ("created_at", models.DateTimeField(default=enclave.core.clock.now)),
                ("account", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="roles", to="accounts.account")),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("account", "name"), name="role_name_unique")],
            },
        ),
        migrations.AddField(
            model_name="membership",
            name="custom_role",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="memberships", to="accounts.role"),
        ),
    ]
