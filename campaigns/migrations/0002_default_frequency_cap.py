from django.db import migrations


def default_cap(apps, schema_editor):
    # Across all marketing: at most one message a day and four a month (HQ edits it).
    FrequencyRule = apps.get_model("campaigns", "FrequencyRule")
    FrequencyRule.objects.get_or_create(channel="", defaults={"per_day": 1, "per_month": 4})


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_broadcasts_foundation")]

    operations = [migrations.RunPython(default_cap, migrations.RunPython.noop)]
