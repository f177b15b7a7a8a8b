from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("members", "0017_refunded_orders_by_payment")]

    operations = [
        migrations.AddField(
            model_name="member",
            name="phone_digest",
            field=models.CharField(
                blank=True, db_default="", default="", max_length=64, verbose_name="phone digest"
            ),
        ),
        migrations.AddField(
            model_name="member",
            name="phone_last4",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                max_length=4,
                verbose_name="phone, last four digits",
            ),
        ),
        migrations.AddField(
            model_name="member",
            name="phone_sealed",
            field=models.BinaryField(blank=True, null=True, verbose_name="phone, encrypted"),
        ),
        migrations.AddField(
            model_name="identity",
            name="hint",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="For phones: the last four digits, shown masked.",
                max_length=4,
                verbose_name="hint",
            ),
        ),
    ]
