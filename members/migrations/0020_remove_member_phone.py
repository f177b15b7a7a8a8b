from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("members", "0019_seal_existing_phones")]

    operations = [migrations.RemoveField(model_name="member", name="phone")]
