"""Imports write every new member and identity: drop the indexes no query needs.

- members.phone loses its two indexes (plain and LIKE): phone lookups go through the
  phone identity, and the member search ORs the phone with a name match, which scans
  anyway.
- identity_unique becomes (value, kind, app), so the same index serves a search by
  value alone, and identity_value_idx goes.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0004_member_hot_updates"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="identity",
            name="identity_unique",
        ),
        migrations.RemoveIndex(
            model_name="identity",
            name="identity_value_idx",
        ),
        migrations.AlterField(
            model_name="member",
            name="phone",
            field=models.CharField(
                blank=True,
                help_text="E.164, e.g. +8613812341234",
                max_length=20,
                verbose_name="phone",
            ),
        ),
        migrations.AddConstraint(
            model_name="identity",
            constraint=models.UniqueConstraint(
                fields=("value", "kind", "app"), name="identity_unique"
            ),
        ),
    ]
