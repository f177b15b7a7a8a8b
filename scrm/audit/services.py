"""Audit events the application writes itself (the triggers write the rest)."""

from __future__ import annotations

from typing import Any

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
