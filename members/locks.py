"""Row locks for the member app, always taken in primary-key order so two requests that
lock the same members can never deadlock each other."""

from __future__ import annotations

from members.models import Member


def lock_members(*members: Member) -> list[Member]:
    """SELECT … FOR UPDATE the given members (merged-away ones included), in pk order;
    returns fresh copies in the order given."""
    pks = sorted({m.pk for m in members})
    locked = {
        m.pk: m for m in Member.all_objects.select_for_update().filter(pk__in=pks).order_by("pk")
    }
    return [locked[m.pk] for m in members]
