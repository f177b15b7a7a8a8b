"""Referrals record the invitee's phone as its keyed digest, like members do."""

from django.db import migrations, models


def digest_invitee_phones(apps, schema_editor):
    from scrm.core.pii import phone_digest

    Referral = apps.get_model("campaigns", "Referral")
    for referral in Referral.objects.filter(invitee_phone__startswith="+").only("invitee_phone"):
        referral.invitee_phone = phone_digest(referral.invitee_phone)
        referral.save(update_fields=["invitee_phone"])


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0016_consent_merge_notes_profiling")]

    operations = [
        migrations.AlterField(
            model_name="referral",
            name="invitee_phone",
            field=models.CharField(
                blank=True,
                help_text="Recorded at registration: a phone earns a referral reward only once.",
                max_length=64,
                verbose_name="invitee's phone digest",
            ),
        ),
        migrations.RunPython(digest_invitee_phones, elidable=False),
    ]
