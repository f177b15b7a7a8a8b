"""Audit trigger: a personal-data key rotation's updates are recorded as one event per batch.

`manage.py rotate_pii_key` rewrites every stored phone's digest (a hash for a hash) and
sealed copy; one trail row per member and per phone identity would say nothing a reader
can use and double the rotation's work. It sets `scrm.audit_updates` to 'off' (SET LOCAL,
its own batch transactions only) and records a `rekey` event with the batch's row counts
in the same transaction. Inserts and deletes are recorded as ever.
"""

import importlib

from django.db import migrations, models

PREVIOUS = importlib.import_module("scrm.audit.migrations.0003_update_pairs_once")

INSERTS_OFF = """    IF TG_OP = 'INSERT' AND current_setting('scrm.audit_inserts', true) = 'off' THEN
        RETURN NULL;
    END IF;
"""
UPDATES_OFF = """    -- A key rotation's batches (manage.py rotate_pii_key) record one `rekey` event each
    -- instead of a row per re-digested phone: see audit migration 0004.
    IF TG_OP = 'UPDATE' AND current_setting('scrm.audit_updates', true) = 'off' THEN
        RETURN NULL;
    END IF;
"""

assert INSERTS_OFF in PREVIOUS.RECORD_CHANGES
RECORD_CHANGES = PREVIOUS.RECORD_CHANGES.replace(INSERTS_OFF, INSERTS_OFF + UPDATES_OFF)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_update_pairs_once")]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("insert", "Created"),
                    ("update", "Changed"),
                    ("delete", "Deleted"),
                    ("unmask", "Full phone shown"),
                    ("export", "Personal data exported"),
                    ("erase", "Personal data erased"),
                    ("rekey", "Phone key rotated"),
                ],
                max_length=10,
                verbose_name="action",
            ),
        ),
        migrations.RunSQL(RECORD_CHANGES, PREVIOUS.RECORD_CHANGES),
    ]
