"""Writes for segments: save, freeze a static list, record sizes, archive.

A dynamic segment is evaluated when used (a broadcast asks for it at send time); a
static one is frozen into a member list once and keeps it. Sizes are recorded on each
refresh so the segment page can show how it grew or shrank.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from members.models import Member, Segment, SegmentKind, SegmentRefresh, SegmentSize
from members.segments.rules import parse_rules
from members.segments.sql import compile_rules
from scrm.core.services import audit_record


def segment_members(
    segment: Segment,
    *,
    user: Any = None,
    now: datetime | None = None,
    by_rules: bool = False,
) -> QuerySet[Member]:
    """The members a segment holds now: its frozen list (static) or its rules (dynamic,
    or any segment with `by_rules`), within its store, and within what `user` may see
    (None: the whole pool)."""
    members = Member.objects.for_user(user) if user is not None else Member.objects.all()
    if segment.store_id:
        members = members.filter(home_store_id=segment.store_id)
    frozen = segment.kind == SegmentKind.STATIC and segment.frozen_at is not None
    if frozen and not by_rules:
        return members.filter(pk__in=segment.frozen_members.values("member_id"))
    return members.filter(compile_rules(parse_rules(segment.rules), now=now).expression())


@transaction.atomic
def segment_save(*, form: Any, actor: Any) -> Segment:
    """Save the builder's form; a new static segment is frozen at once."""
    creating = form.instance.pk is None
    segment: Segment = form.save(commit=False)
    if creating:
        segment.created_by = actor if getattr(actor, "pk", None) else None
    segment.save()
    audit_record(
        actor=actor,
        action="segment.create" if creating else "segment.update",
        target=segment,
        data={"name": segment.name, "kind": segment.kind, "rules": segment.rules},
    )
    if segment.kind == SegmentKind.STATIC and segment.frozen_at is None:
        segment_freeze(segment=segment, actor=actor)
    else:
        segment_record_size(segment=segment)
    return segment


@transaction.atomic
def segment_freeze(*, segment: Segment, actor: Any) -> int:
    """Freeze the members the rules select now into the static list (replacing it)."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    now = timezone.now()
    live = segment_members(segment, now=now, by_rules=True)
    query, params = live.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM members_segmentmember WHERE segment_id = %s", [segment.pk])
        cursor.execute(
            f"INSERT INTO members_segmentmember (segment_id, member_id) "
            f"SELECT %s, frozen.id FROM ({query}) AS frozen(id)",
            [segment.pk, *params],
        )
        size = cursor.rowcount
    segment.kind = SegmentKind.STATIC
    segment.frozen_at = now
    segment.size, segment.sized_at = size, now
    segment.save(update_fields=["kind", "frozen_at", "size", "sized_at", "updated_at"])
    SegmentSize.objects.create(segment=segment, at=now, size=size)
    audit_record(actor=actor, action="segment.freeze", target=segment, data={"size": size})
    return size


def segment_record_size(*, segment: Segment, now: datetime | None = None) -> int:
    now = now or timezone.now()
    size = segment_members(segment, now=now).count()
    Segment.objects.filter(pk=segment.pk).update(size=size, sized_at=now)
    SegmentSize.objects.create(segment=segment, at=now, size=size)
    segment.size, segment.sized_at = size, now
    return size


REFRESH_EVERY = {SegmentRefresh.HOURLY: timedelta(hours=1), SegmentRefresh.DAILY: timedelta(days=1)}


def segments_due(now: datetime | None = None) -> list[int]:
    """Dynamic segments whose scheduled size refresh is due."""
    now = now or timezone.now()
    due = []
    for segment in Segment.objects.filter(
        archived=False, kind=SegmentKind.DYNAMIC, refresh__in=list(REFRESH_EVERY)
    ).only("pk", "refresh", "sized_at"):
        every = REFRESH_EVERY[SegmentRefresh(segment.refresh)]
        # A little slack so an hourly beat does not skip a segment counted 59 minutes ago.
        if segment.sized_at is None or segment.sized_at <= now - every + timedelta(minutes=5):
            due.append(segment.pk)
    return due


def segments_refresh_due(now: datetime | None = None) -> int:
    """Record the size of every segment whose scheduled refresh is due."""
    refreshed = 0
    for segment in Segment.objects.filter(pk__in=segments_due(now)):
        segment_record_size(segment=segment, now=now)
        refreshed += 1
    return refreshed


@transaction.atomic
def segment_archive(*, segment: Segment, actor: Any, archived: bool = True) -> Segment:
    segment.archived = archived
    segment.save(update_fields=["archived", "updated_at"])
    audit_record(
        actor=actor,
        action="segment.archive" if archived else "segment.restore",
        target=segment,
        data={"name": segment.name},
    )
    return segment
