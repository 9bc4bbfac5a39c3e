"""Erasure tombstones name a subject (``person``), its account, id and row key — what the
personal-data registry's erasure steps need — instead of a model label. The account of
each existing person tombstone comes from ``people.ErasureTombstone`` (removed next);
existing tombstones have no row key (they match by id, as before)."""

from django.db import migrations, models


def forwards(apps, schema_editor):
    tombstone = apps.get_model("backups", "ErasureTombstone")
    people_stone = apps.get_model("people", "ErasureTombstone")
    accounts = dict(people_stone.objects.values_list("person_id", "account_id"))
    for row in tombstone.objects.all():
        subject = row.model_label.rsplit(".", 1)[-1].lower()
        object_ref = int(row.object_id)
        row.subject = subject
        row.object_ref = object_ref
        row.account_id = accounts.get(object_ref) if subject == "person" else None
        row.save(update_fields=["subject", "object_ref", "account_id"])
    # Person tombstones only the people app kept (none expected): keep them too.
    known = set(tombstone.objects.filter(subject="person").values_list("object_ref",
                                                                       flat=True))
    for person_id, account_id in accounts.items():
        if person_id not in known:
            tombstone.objects.create(subject="person", object_ref=person_id,
                                     account_id=account_id, model_label="people.person",
                                     object_id=str(person_id))


class Migration(migrations.Migration):

    dependencies = [
        ("backups", "0002_move_backup_keys_to_secrets_dir"),
        ("people", "0002_search_indexes"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="erasuretombstone",
                                    name="backups_tombstone_unique"),
        migrations.AddField(model_name="erasuretombstone", name="subject",
                            field=models.CharField(default="person", max_length=16)),
        migrations.AddField(model_name="erasuretombstone", name="account_id",
                            field=models.BigIntegerField(null=True)),
        migrations.AddField(model_name="erasuretombstone", name="object_ref",
                            field=models.BigIntegerField(null=True)),
        migrations.AddField(model_name="erasuretombstone", name="row_key",
                            field=models.CharField(blank=True, default="", max_length=64)),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.RemoveField(model_name="erasuretombstone", name="model_label"),
        migrations.RemoveField(model_name="erasuretombstone", name="object_id"),
        migrations.RenameField(model_name="erasuretombstone", old_name="object_ref",
                               new_name="object_id"),
        migrations.AlterField(model_name="erasuretombstone", name="object_id",
                              field=models.BigIntegerField()),
        migrations.AlterField(model_name="erasuretombstone", name="subject",
                              field=models.CharField(max_length=16)),
        migrations.AddConstraint(
            model_name="erasuretombstone",
            constraint=models.UniqueConstraint(fields=("subject", "object_id", "row_key"),
                                               name="backups_tombstone_subject_unique")),
    ]
