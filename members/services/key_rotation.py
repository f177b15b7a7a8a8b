"""Moving every stored phone to the current personal-data key (`manage.py rotate_pii_key`).

A digest cannot be re-keyed from itself: the number is needed. The numbers we hold are the
sealed copies on members (merged-away members keep theirs) and in merges' before-snapshots.
Members are read in batches by id; for each batch the sealed copies are opened (with
whichever key sealed them), and in one transaction:

- the members get the current key's digest and a seal under the current key;
- every other row holding one of these numbers' previous-key digests gets the current
  one: phone identities, merge suggestions' evidence and the digest columns other apps
  register (`register_phone_digest_column`, e.g. referrals' invitee phone).

Then the merges' snapshots, the same way. A row already under the current key is left
alone, so a second run writes nothing and a run stopped halfway is finished by running it
again. Nothing plain is written: digests and sealed values only.

The audit trail gets one `rekey` event per batch with its row counts, instead of a row per
re-digested phone (the batch sets `scrm.audit_updates` off, audit migration 0004). A phone
identity whose current digest another row already holds is a duplicate: deleted (that is
recorded as any delete) when it is the same member's, else left and counted as a
conflict for a person to look at.

Rows whose digest is no sealed number's under any key cannot be re-digested: a phone
identity of a second phone linked to a member who already had one (only the member's first
phone is sealed), a member whose sealed copy is missing. They are counted as `unmatched`;
a lookup finds them only while the key that made them is configured.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from django.db import connection, models, transaction

from members.models import IdentityKind, MemberMerge
from scrm.audit.models import AuditAction
from scrm.audit.services import record_event
from scrm.core.pii import phone_digests, seal_phone, unseal

BATCH = 2000
DIGESTS_TABLE = "pii_rotation_digests"

# table → column: other apps' columns holding a phone digest (registered in their ready()).
DIGEST_COLUMNS: dict[str, str] = {}


def register_phone_digest_column(model: type[models.Model], field_name: str) -> None:
    """Have the rotation re-digest `model.field_name` (a phone's keyed digest)."""
    column = model._meta.get_field(field_name).column  # type: ignore[union-attr]
    DIGEST_COLUMNS[model._meta.db_table] = str(column)


@dataclass
class RotationReport:
    # Rows rewritten (a run) or still holding a previous key (a check), per table.
    rows: Counter[str] = field(default_factory=Counter)
    # Identity rows deleted as duplicates of the same member's current row.
    duplicates_removed: int = 0
    # Sealed values no configured key opens: (table, row id).
    unreadable: list[tuple[str, int]] = field(default_factory=list)
    # After a run: rows still holding a previous key (identity conflicts, a row changed
    # meanwhile); with --check the same as `rows`.
    remaining: Counter[str] = field(default_factory=Counter)
    # Rows whose digest is no known number's under any key (see the module docstring).
    unmatched: Counter[str] = field(default_factory=Counter)

    @property
    def clean(self) -> bool:
        """No row we can tell holds a previous key, and every sealed value opened: the
        previous keys may be removed."""
        return not +self.remaining and not self.unreadable

    def summary(self) -> dict[str, Any]:
        def table(counts: Counter[str]) -> dict[str, int]:
            return dict(sorted((+counts).items()))

        return {
            "rows": table(self.rows),
            "duplicates_removed": self.duplicates_removed,
            "remaining": table(self.remaining),
            "unreadable": table(Counter(name for name, _row in self.unreadable)),
            "unmatched": table(self.unmatched),
        }


@dataclass
class _Batch:
    # Members to rewrite: (id, digest read, sealed read, new digest, new sealed).
    members: list[tuple[int, str, bytes, str, bytes]] = field(default_factory=list)
    # Per previous key (in configured order): its digest → the current key's.
    renames: list[dict[str, str]] = field(default_factory=list)
    # Every digest of every number seen, with whether it is the current key's.
    digests: dict[str, bool] = field(default_factory=dict)
    # Merges whose before-snapshots were re-keyed (in memory, saved with the batch).
    merges: list[MemberMerge] = field(default_factory=list)

    def add_number(self, phone: str) -> str:
        current, *previous = phone_digests(phone)
        self.digests[current] = True
        for index, digest in enumerate(previous):
            while len(self.renames) <= index:
                self.renames.append({})
            self.renames[index][digest] = current
            self.digests.setdefault(digest, False)
        return current


Progress = Callable[[str], None]


def rotation_run(
    *, write: bool, batch_size: int = BATCH, progress: Progress | None = None, origin: str = ""
) -> RotationReport:
    """Re-key every stored phone (`write`), or only count what still needs it."""
    report = RotationReport()
    say = progress or (lambda message: None)
    with connection.cursor() as cursor:
        # Session-wide (outlives the batch transactions): every digest of every number
        # seen, to tell at the end which rows still hold a previous key's.
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{DIGESTS_TABLE}")
        cursor.execute(
            f"CREATE TEMP TABLE {DIGESTS_TABLE} (digest text PRIMARY KEY, current boolean)"
        )
        cursor.execute(
            "SELECT count(*) FROM members_member WHERE phone_sealed IS NOT NULL "
            "OR phone_digest <> ''"
        )
        total = cursor.fetchone()[0]
    try:
        verb = "re-keyed" if write else "to re-key"
        done = 0
        for ids, batch in _member_batches(report, batch_size):
            _apply(batch, report, write=write, origin=origin, span=("members_member", ids))
            done += len(ids)
            say(f"members: {done}/{total} read, {report.rows['members_member']} {verb}")
        done = 0
        for ids, batch in _merge_batches(report, batch_size):
            _apply(batch, report, write=write, origin=origin, span=("members_membermerge", ids))
            done += len(ids)
            say(f"merges: {done} read, {report.rows['members_membermerge']} {verb}")
        _count_leftovers(report, write=write)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{DIGESTS_TABLE}")
    return report


def _member_batches(report: RotationReport, size: int) -> Iterator[tuple[list[int], _Batch]]:
    after = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, phone_digest, phone_sealed FROM members_member "
                "WHERE id > %s AND (phone_sealed IS NOT NULL OR phone_digest <> '') "
                "ORDER BY id LIMIT %s",
                [after, size],
            )
            rows = cursor.fetchall()
        if not rows:
            return
        after = rows[-1][0]
        batch = _Batch()
        for member_id, digest, sealed in rows:
            if sealed is None:
                continue  # no number to re-key from: counted as unmatched at the end
            try:
                opened = unseal(sealed)
            except (InvalidTag, ValueError):
                report.unreadable.append(("members_member", member_id))
                continue
            current = batch.add_number(opened.phone)
            # A member with a sealed copy and no digest keeps having none.
            new_digest = current if digest else ""
            if new_digest != digest or not opened.current:
                new_sealed = bytes(sealed) if opened.current else seal_phone(opened.phone)
                batch.members.append((member_id, digest, bytes(sealed), new_digest, new_sealed))
        yield [row[0] for row in rows], batch


def _merge_batches(report: RotationReport, size: int) -> Iterator[tuple[list[int], _Batch]]:
    """The before-snapshots merges keep for undo hold a member's phone columns too."""
    after = 0
    while True:
        merges = list(
            MemberMerge.objects.filter(pk__gt=after)
            .order_by("pk")
            .only("pk", "kept_before", "dropped_before")[:size]
        )
        if not merges:
            return
        after = merges[-1].pk
        batch = _Batch()
        for merge in merges:
            kept = _rekey_snapshot(merge.kept_before, batch, report, merge.pk)
            dropped = _rekey_snapshot(merge.dropped_before, batch, report, merge.pk)
            if kept is not None or dropped is not None:
                merge.kept_before = kept if kept is not None else merge.kept_before
                merge.dropped_before = dropped if dropped is not None else merge.dropped_before
                batch.merges.append(merge)
        yield [merge.pk for merge in merges], batch


def _rekey_snapshot(
    snapshot: Any, batch: _Batch, report: RotationReport, merge_id: int
) -> dict[str, Any] | None:
    """The snapshot under the current key, or None when it needs no change."""
    if not isinstance(snapshot, dict) or not snapshot.get("phone_sealed"):
        return None
    try:
        sealed = base64.b64decode(snapshot["phone_sealed"])
        opened = unseal(sealed)
    except (InvalidTag, ValueError, TypeError):
        report.unreadable.append(("members_membermerge", merge_id))
        return None
    current = batch.add_number(opened.phone)
    digest = snapshot.get("phone_digest") or ""
    new_digest = current if digest else ""
    if new_digest == digest and opened.current:
        return None
    return {
        **snapshot,
        "phone_digest": new_digest,
        "phone_sealed": snapshot["phone_sealed"]
        if opened.current
        else base64.b64encode(seal_phone(opened.phone)).decode(),
    }


def _apply(
    batch: _Batch,
    report: RotationReport,
    *,
    write: bool,
    origin: str,
    span: tuple[str, list[int]],
) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        if batch.digests:
            cursor.execute(
                f"INSERT INTO {DIGESTS_TABLE} (digest, current) "
                "SELECT * FROM unnest(%s::text[], %s::boolean[]) ON CONFLICT DO NOTHING",
                [list(batch.digests), list(batch.digests.values())],
            )
        if not write:
            report.rows["members_member"] += len(batch.members)
            report.rows["members_membermerge"] += len(batch.merges)
            return
        # This batch's rewrites are recorded by the one event below (audit migration 0004).
        cursor.execute("SET LOCAL scrm.audit_updates = 'off'")
        counts: Counter[str] = Counter()
        if batch.members:
            # Only rows still as read: a phone changed meanwhile is under the current key.
            cursor.execute(
                "UPDATE members_member m SET phone_digest = u.digest, phone_sealed = u.sealed "
                "FROM unnest(%s::bigint[], %s::text[], %s::bytea[], %s::text[], %s::bytea[]) "
                "AS u(id, old_digest, old_sealed, digest, sealed) "
                "WHERE m.id = u.id AND m.phone_digest = u.old_digest "
                "AND m.phone_sealed = u.old_sealed",
                [list(column) for column in zip(*batch.members, strict=True)],
            )
            counts["members_member"] = cursor.rowcount
            report.remaining["members_member"] += len(batch.members) - cursor.rowcount
        if batch.merges:
            MemberMerge.objects.bulk_update(batch.merges, ["kept_before", "dropped_before"])
            counts["members_membermerge"] = len(batch.merges)
        for renames in batch.renames:
            old, new = list(renames), list(renames.values())
            # The same member holds the current digest already: the old row is a duplicate.
            cursor.execute(
                "DELETE FROM members_identity o "
                "USING unnest(%s::text[], %s::text[]) AS u(old, new), members_identity n "
                "WHERE o.value = u.old AND o.kind = %s AND o.app = '' "
                "AND n.value = u.new AND n.kind = %s AND n.app = '' "
                "AND n.member_id = o.member_id",
                [old, new, IdentityKind.PHONE, IdentityKind.PHONE],
            )
            report.duplicates_removed += cursor.rowcount
            cursor.execute(
                "UPDATE members_identity o SET value = u.new "
                "FROM unnest(%s::text[], %s::text[]) AS u(old, new) "
                "WHERE o.value = u.old AND o.kind = %s AND o.app = '' AND NOT EXISTS ("
                "SELECT 1 FROM members_identity n "
                "WHERE n.value = u.new AND n.kind = %s AND n.app = '')",
                [old, new, IdentityKind.PHONE, IdentityKind.PHONE],
            )
            counts["members_identity"] += cursor.rowcount
            for table, column in DIGEST_COLUMNS.items():
                cursor.execute(
                    f"UPDATE {table} t SET {column} = u.new "  # noqa: S608 - registered names
                    "FROM unnest(%s::text[], %s::text[]) AS u(old, new) "
                    f"WHERE t.{column} = u.old",
                    [old, new],
                )
                counts[table] += cursor.rowcount
            cursor.execute(_REWRITE_EVIDENCE, {"old": old, "new": new, "kind": IdentityKind.PHONE})
            counts["members_mergesuggestion"] += cursor.rowcount
        # Inside a caller's transaction SET LOCAL would outlast this batch: end it here.
        cursor.execute("SET LOCAL scrm.audit_updates = 'on'")
        report.rows.update(counts)
        if +counts:
            table, ids = span
            record_event(
                AuditAction.REKEY,
                table=table,
                row_id=f"{ids[0]}-{ids[-1]}",
                detail=dict(sorted((+counts).items())),
                origin=origin,
            )


# A suggestion's evidence is a list of identities as described by the identity service
# ({"kind", "app", "value", "hint"}); an erased member's suggestions hold {} instead.
_EVIDENCE_NAMES = """
    SELECT 1 FROM jsonb_array_elements(s.evidence) AS e
    JOIN unnest(%(old)s::text[]) AS u(old) ON u.old = e->>'value'
    WHERE e->>'kind' = %(kind)s
"""
_REWRITE_EVIDENCE = f"""
UPDATE members_mergesuggestion s SET evidence = (
    SELECT jsonb_agg(CASE WHEN x.e->>'kind' = %(kind)s AND u.new IS NOT NULL
                          THEN jsonb_set(x.e, '{{value}}', to_jsonb(u.new)) ELSE x.e END
                     ORDER BY x.i)
      FROM jsonb_array_elements(s.evidence) WITH ORDINALITY AS x(e, i)
      LEFT JOIN unnest(%(old)s::text[], %(new)s::text[]) AS u(old, new)
        ON u.old = x.e->>'value')
WHERE CASE WHEN jsonb_typeof(s.evidence) = 'array' THEN EXISTS ({_EVIDENCE_NAMES})
           ELSE false END
"""


def _count_leftovers(report: RotationReport, *, write: bool) -> None:
    """What still holds a previous key's digest (by the digests of every number seen),
    and what holds a digest of no number seen at all."""
    target = report.remaining if write else report.rows
    columns = {"members_member": "phone_digest", "members_identity": "value", **DIGEST_COLUMNS}
    with connection.cursor() as cursor:
        for table, column in columns.items():
            phone_only = " AND t.kind = 'phone'" if table == "members_identity" else ""
            cursor.execute(
                f"SELECT count(*) FILTER (WHERE d.current IS false), "  # noqa: S608
                f"count(*) FILTER (WHERE d.digest IS NULL) FROM {table} t "
                f"LEFT JOIN {DIGESTS_TABLE} d ON d.digest = t.{column} "
                f"WHERE t.{column} <> ''{phone_only}"
            )
            old, unmatched = cursor.fetchone()
            if table != "members_member":  # members are counted as they are read
                target[table] += old
            report.unmatched[table] += unmatched
        cursor.execute(
            "SELECT count(*) FROM members_mergesuggestion s "
            "WHERE CASE WHEN jsonb_typeof(s.evidence) = 'array' THEN EXISTS ("
            "SELECT 1 FROM jsonb_array_elements(s.evidence) AS e "
            f"JOIN {DIGESTS_TABLE} d ON d.digest = e->>'value' AND NOT d.current "
            "WHERE e->>'kind' = 'phone') ELSE false END"
        )
        target["members_mergesuggestion"] += cursor.fetchone()[0]
    if not write:
        report.remaining = +Counter(report.rows)
