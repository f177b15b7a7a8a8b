"""The board's live figures for steps 1, 3 and 4 (pool, observe, loyalty), read from the
daily aggregates — never from the member, tag or points tables, which hold millions of
rows. Pool size, tags, tiers and active customers come from the latest hourly snapshot;
new contacts and points outstanding carry their trend."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db.models import Max, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from analytics.models import PointsDay, PoolDay, SnapshotDay
from scrm.core.board import Figure, step_figure

WEEKS = 8
ACTIVE_STAGES = ("new", "repeat", "loyal")


def _latest_snapshot(user: Any) -> dict[tuple[str, str], int]:
    """(dimension, value) → members, on the latest day a snapshot was taken. Read once
    per page (four figures use it): kept on the request's user object."""
    cached = getattr(user, "_board_latest_snapshot", None)
    if cached is not None:
        return cached
    latest = SnapshotDay.objects.aggregate(day=Max("day"))["day"]
    if latest is None:
        user._board_latest_snapshot = {}
        return {}
    rows: Any = (
        SnapshotDay.objects.for_user(user)
        .filter(day=latest)
        .values_list("dimension", "value")
        .annotate(n=Sum("members"))
    )
    snapshot = {(dimension, value): n for dimension, value, n in rows}
    user._board_latest_snapshot = snapshot
    return snapshot


def _weekly_new_contacts(user: Any) -> list[float]:
    """New contacts per seven days, the last WEEKS of them, the latest last."""
    today = timezone.localdate()
    first = today - timedelta(days=7 * WEEKS - 1)
    daily: Any = (
        PoolDay.objects.for_user(user)
        .filter(day__gte=first, day__lte=today)
        .values_list("day")
        .annotate(n=Sum("new_contacts"))
    )
    weeks = [0.0] * WEEKS
    for day, n in daily:
        weeks[(day - first).days // 7] += n or 0
    return weeks


@step_figure(1)
def pool_size(user: Any) -> Figure:
    snapshot = _latest_snapshot(user)
    size = sum(n for (dimension, _value), n in snapshot.items() if dimension == "stage")
    return Figure(_("members and prospects"), size, url=reverse("hq:members"))


@step_figure(1)
def new_this_week(user: Any) -> Figure:
    weeks = _weekly_new_contacts(user)
    return Figure(
        _("new this week"),
        int(weeks[-1]),
        url=reverse("hq:monitor-pool"),
        trend=weeks,
        trend_period=_("a week"),
    )


@step_figure(3)
def tag_coverage(user: Any) -> Figure:
    today = timezone.localdate()
    daily: Any = (
        SnapshotDay.objects.for_user(user)
        .filter(dimension="tagged", day__gt=today - timedelta(days=14))
        .values_list("day", "value")
        .annotate(n=Sum("members"))
    )
    counts: dict[date, dict[str, int]] = {}
    for day, value, n in daily:
        counts.setdefault(day, {})[value] = n
    trend = [
        round(100 * c.get("yes", 0) / (c.get("yes", 0) + c.get("no", 0)))
        for _day, c in sorted(counts.items())
        if c.get("yes", 0) + c.get("no", 0)
    ]
    return Figure(
        _("members with a tag (%)"),
        trend[-1] if trend else 0,
        url=reverse("hq:tags"),
        trend=[float(v) for v in trend] if len(trend) > 1 else None,
        trend_period=_("a day"),
    )


@step_figure(4)
def active_customers(user: Any) -> Figure:
    snapshot = _latest_snapshot(user)
    active = sum(snapshot.get(("stage", stage), 0) for stage in ACTIVE_STAGES)
    return Figure(
        _("active customers (new, repeat, loyal)"), active, url=reverse("hq:monitor-lifecycle")
    )


@step_figure(4)
def points_outstanding(user: Any) -> Figure:
    today = timezone.localdate()
    daily: Any = (
        PointsDay.objects.for_user(user)
        .filter(day__gt=today - timedelta(days=14), outstanding__isnull=False)
        .values_list("day")
        .annotate(n=Sum("outstanding"))
        .order_by("day")
    )
    by_day: dict[date, int] = dict(daily)
    trend = [float(n) for n in by_day.values()]
    return Figure(
        _("activity points outstanding"),
        int(trend[-1]) if trend else 0,
        url=reverse("hq:monitor-points"),
        trend=trend if len(trend) > 1 else None,
        trend_period=_("a day"),
    )


@step_figure(4)
def tiered_members(user: Any) -> Figure:
    snapshot = _latest_snapshot(user)
    tiered = sum(n for (dimension, value), n in snapshot.items() if dimension == "tier" and value)
    return Figure(_("members with a tier"), tiered, url=reverse("hq:monitor-tiers"))
