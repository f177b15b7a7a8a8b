from django.db import migrations


def create_default_mappings(apps, schema_editor):
    from touchpoints.imports.mappings import MEMBER_DEFAULTS, ORDER_DEFAULTS

    ImportMapping = apps.get_model("touchpoints", "ImportMapping")
    for kind, table in (("members", MEMBER_DEFAULTS), ("orders", ORDER_DEFAULTS)):
        for source, columns in table.items():
            ImportMapping.objects.get_or_create(source=source, kind=kind,
                                                defaults={"columns": columns})


class Migration(migrations.Migration):
    dependencies = [("touchpoints", "0001_initial")]

    operations = [migrations.RunPython(create_default_mappings, migrations.RunPython.noop)]
