"""Audit events the application writes itself (the triggers write the rest)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction

from scrm.audit.models import AuditAction, AuditEvent


def record_event(
    action: AuditAction | str,
    *,
    actor: Any = None,
    member_id: int | None = None,
    table: str = "",
    row_id: object = "",
    detail: dict[str, Any] | None = None,
    origin: str = "",
) -> AuditEvent:
    """Record that `actor` (a user, or None for the system) did `action`.

    `detail` goes into `new`: what was shown, exported or erased — never the personal
    data itself.
    """
    actor_id = getattr(actor, "pk", None)
    label = actor.get_username() if actor_id is not None else ""
    return AuditEvent.objects.create(
        action=action,
        actor_id=actor_id,
        actor_label=label[:150],
        member_id=member_id,
        table=table,
        row_id=str(row_id)[:64],
        new=detail,
        origin=origin[:200],
    )


ERASED = "[erased]"


@transaction.atomic
def scrub_member_history(member_id: int, fields: list[str]) -> int:
    """Replace the values of `fields` in every recorded before/after of member `member_id`
    with "[erased]" (erasing a member's personal data must reach its history too).

    The trail is append-only; this is the one permitted change, allowed by SET LOCAL for
    this transaction only. Returns how many events were changed."""
    names = sorted({str(field) for field in fields if str(field)})
    if not names:
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL scrm.audit_scrub = 'on'")
        cursor.execute(
            """
            UPDATE audit_auditevent
               SET old = CASE WHEN old ?| %(names)s THEN (
                         SELECT jsonb_object_agg(key, CASE WHEN key = ANY(%(names)s)
                                                           THEN to_jsonb(%(marker)s::text)
                                                           ELSE value END)
                           FROM jsonb_each(old)) ELSE old END,
                   new = CASE WHEN new ?| %(names)s THEN (
                         SELECT jsonb_object_agg(key, CASE WHEN key = ANY(%(names)s)
                                                           THEN to_jsonb(%(marker)s::text)
                                                           ELSE value END)
                           FROM jsonb_each(new)) ELSE new END
             WHERE member_id = %(member)s
               AND (old ?| %(names)s OR new ?| %(names)s)
            """,
            {"names": names, "marker": ERASED, "member": member_id},
        )
        changed = cursor.rowcount
        # Called inside a larger transaction (the erase), the permission ends here, not
        # with that transaction.
        cursor.execute("SET LOCAL scrm.audit_scrub = 'off'")
    return changed


@contextmanager
def creations_unrecorded(cursor: Any) -> Iterator[None]:
    """Rows inserted inside are not copied into the trail: for an import job's members and
    identities, which the job itself records (who, which file, how many); copying each
    row of a million-row file doubled the import's database work. Updates and deletes
    are recorded as ever. Inside the caller's transaction only; an error rolls the
    setting back with it."""
    cursor.execute("SET LOCAL scrm.audit_inserts TO 'off'")
    yield
    cursor.execute("SET LOCAL scrm.audit_inserts TO 'on'")
