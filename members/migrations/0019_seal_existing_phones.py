"""Existing plain phones → digest, last four digits and sealed copy, in batches.

Members keep theirs in the new columns; phone identities get the digest as their value
and the last four digits as their hint; merge suggestions' evidence names the digest, and
merges' before-snapshots (for undo) keep the new columns instead of the number.
Not reversible: the identities' numbers are gone once digested (members' sealed copies
still hold every member's number)."""

import base64

from django.db import migrations, models

BATCH = 5000


def seal_phones(apps, schema_editor):
    from scrm.core.pii import last4, phone_digest, seal_phone

    connection = schema_editor.connection
    with connection.cursor() as cursor:
        after = 0
        while True:
            cursor.execute(
                "SELECT id, phone FROM members_member WHERE phone <> '' AND id > %s "
                "ORDER BY id LIMIT %s",
                [after, BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                break
            after = rows[-1][0]
            cursor.execute(
                "UPDATE members_member m SET phone_digest = u.digest, phone_last4 = u.last4, "
                "phone_sealed = u.sealed, phone = '' "
                "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bytea[]) "
                "AS u(id, digest, last4, sealed) WHERE m.id = u.id",
                [
                    [row[0] for row in rows],
                    [phone_digest(row[1]) for row in rows],
                    [last4(row[1]) for row in rows],
                    [seal_phone(row[1]) for row in rows],
                ],
            )
        after = 0
        while True:
            # Plain numbers start with "+"; digests are hex, so a rerun skips them.
            cursor.execute(
                "SELECT id, value FROM members_identity WHERE kind = 'phone' "
                "AND value LIKE '+%%' AND id > %s ORDER BY id LIMIT %s",
                [after, BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                break
            after = rows[-1][0]
            cursor.execute(
                "UPDATE members_identity i SET value = u.digest, hint = u.last4 "
                "FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS u(id, digest, last4) "
                "WHERE i.id = u.id",
                [
                    [row[0] for row in rows],
                    [phone_digest(row[1]) for row in rows],
                    [last4(row[1]) for row in rows],
                ],
            )
    MergeSuggestion = apps.get_model("members", "MergeSuggestion")
    for suggestion in MergeSuggestion.objects.filter(evidence__contains=[{"kind": "phone"}]):
        evidence = []
        for item in suggestion.evidence:
            value = item.get("value", "")
            if item.get("kind") == "phone" and value.startswith("+"):
                item = {**item, "value": phone_digest(value), "hint": last4(value)}
            evidence.append(item)
        suggestion.evidence = evidence
        suggestion.save(update_fields=["evidence"])
    MemberMerge = apps.get_model("members", "MemberMerge")
    for merge in MemberMerge.objects.filter(
        models.Q(kept_before__has_key="phone") | models.Q(dropped_before__has_key="phone")
    ):
        merge.kept_before = _snapshot_without_phone(merge.kept_before)
        merge.dropped_before = _snapshot_without_phone(merge.dropped_before)
        merge.save(update_fields=["kept_before", "dropped_before"])


def _snapshot_without_phone(snapshot):
    from scrm.core.pii import last4, phone_digest, seal_phone

    if "phone" not in snapshot:
        return snapshot
    snapshot = dict(snapshot)
    phone = snapshot.pop("phone") or ""
    snapshot["phone_digest"] = phone_digest(phone) if phone else ""
    snapshot["phone_last4"] = last4(phone) if phone else ""
    snapshot["phone_sealed"] = base64.b64encode(seal_phone(phone)).decode() if phone else None
    return snapshot


class Migration(migrations.Migration):
    dependencies = [("members", "0018_phone_digest_and_seal")]

    operations = [migrations.RunPython(seal_phones, elidable=False)]
