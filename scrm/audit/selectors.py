"""Reading the audit trail: the HQ viewer's filters and a member's recent history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from scrm.audit.models import AuditAction, AuditEvent
from scrm.audit.tables import column_label, table_label


@dataclass(frozen=True)
class AuditFilters:
    table: str = ""
    action: str = ""
    actor: str = ""
    member_id: int | None = None
    start: date | None = None
    end: date | None = None
    search: str = ""


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_events(*, filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Events matching `filters`, newest first. Callers check `can_view_audit` first:
    the trail is head office's alone, so there is no per-store scoping here."""
    events = AuditEvent.objects.order_by("-at", "-pk")
    if filters.table:
        events = events.filter(table=filters.table)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.actor:
        events = events.filter(actor_label__icontains=filters.actor)
    if filters.member_id is not None:
        events = events.filter(member_id=filters.member_id)
    if filters.start:
        events = events.filter(at__gte=_day_start(filters.start))
    if filters.end:
        events = events.filter(at__lt=_day_start(filters.end + timedelta(days=1)))
    if filters.search:
        term = filters.search
        events = events.filter(
            Q(row_id=term)
            | Q(origin__icontains=term)
            | Q(actor_label__icontains=term)
            | Q(old__icontains=term)
            | Q(new__icontains=term)
        )
    return events


def member_history(*, member_id: int, limit: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(member_id=member_id).order_by("-at", "-pk")[:limit])


@dataclass(frozen=True)
class Change:
    column: str
    label: str
    old: Any
    new: Any


def changes(event: AuditEvent) -> list[Change]:
    """What an event changed, column by column: both sides for an update, the values
    created for an insert, the values removed for a delete, the detail for the rest (a
    key rotation's detail counts rows per table)."""
    old = event.old if isinstance(event.old, dict) else {}
    new = event.new if isinstance(event.new, dict) else {}
    columns = list(dict.fromkeys([*new, *old]))
    label = table_label if event.action == AuditAction.REKEY else partial(column_label, event.table)
    return [
        Change(
            column=column,
            label=label(column),
            old=old.get(column),
            new=new.get(column),
        )
        for column in columns
    ]
