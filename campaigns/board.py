"""The board's live figures for steps 7–9 (create campaigns, execute automatically,
monitor), read from small tables: campaigns and broadcasts, the funnel facts, and the
conversions (indexed by when the order was paid)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Sum
from django.db.models.functions import TruncWeek
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models import Broadcast, Campaign, Conversion, FunnelFact, JourneyEnrollment
from scrm.core.board import Figure, step_figure, trend_start, weekly_trend

WEEKS = 8
DAYS = 14


@step_figure(7)
def campaigns_running(user: Any) -> Figure:
    running: int = Campaign.objects.for_user(user).filter(status="active").count()
    return Figure(_("campaigns running"), running, url=reverse("hq:campaigns") + "?status=active")


@step_figure(7)
def launched_this_week(user: Any) -> Figure:
    """Campaigns activated and broadcasts sent, per week."""
    start = trend_start()
    activated: Any = (
        Campaign.objects.for_user(user)
        .filter(activated_at__gte=start)
        .values_list("activated_at", flat=True)
    )
    sent: Any = (
        Broadcast.objects.for_user(user)
        .filter(journey_step__isnull=True, planned_at__gte=start)
        .values_list("planned_at", flat=True)
    )
    trend = weekly_trend((when, 1) for when in [*activated, *sent])
    return Figure(
        _("campaigns and broadcasts launched this week"),
        int(trend[-1]),
        url=reverse("hq:campaign-compare"),
        trend=trend,
        trend_period=_("a week"),
    )


@step_figure(7)
def broadcasts_awaiting_approval(user: Any) -> Figure:
    waiting: int = (
        Broadcast.objects.for_user(user).filter(status="pending", journey_step__isnull=True).count()
    )
    return Figure(
        _("broadcasts waiting for approval"),
        waiting,
        url=reverse("hq:broadcasts") + "?status=pending",
    )


@step_figure(8)
def members_on_journeys(user: Any) -> Figure:
    campaigns: Any = Campaign.objects.for_user(user).filter(status="active")
    on = JourneyEnrollment.objects.filter(campaign__in=campaigns, state="active").count()
    return Figure(_("members on journeys now"), on, url=reverse("hq:campaigns"))


@step_figure(8)
def sent_today(user: Any) -> Figure:
    today = timezone.localdate()
    daily: dict[Any, Any] = dict(
        FunnelFact.objects.for_user(user)
        .filter(day__gt=today - timedelta(days=DAYS))
        .values_list("day")
        .annotate(n=Sum("sent"))
        .values_list("day", "n")
    )
    trend = [float(daily.get(today - timedelta(days=DAYS - 1 - i)) or 0) for i in range(DAYS)]
    return Figure(
        _("messages sent today"),
        int(trend[-1]),
        url=reverse("hq:campaign-compare"),
        trend=trend,
        trend_period=_("a day"),
    )


def _weekly_conversions(user: Any) -> tuple[list[float], list[float]]:
    """Orders attributed and their revenue per week (Monday to Sunday, local time), the
    last WEEKS weeks, this one last. Read once per page: both step 9 figures use it, so
    it is kept on the request's user object."""
    cached = getattr(user, "_board_weekly_conversions", None)
    if cached is not None:
        return cached
    today = timezone.localdate()
    first = today - timedelta(days=today.weekday(), weeks=WEEKS - 1)
    start = timezone.make_aware(datetime.combine(first, time.min))
    weeks: dict[date, dict[str, Any]] = {}
    rows: Any = (
        Conversion.objects.for_user(user)
        .filter(converted_at__gte=start)
        .annotate(week=TruncWeek("converted_at"))
        .values("week")
        .annotate(orders=Count("pk"), revenue=Sum("revenue"))
    )
    for row in rows:
        weeks[timezone.localtime(row["week"]).date()] = row
    mondays = [first + timedelta(weeks=i) for i in range(WEEKS)]
    orders = [float((weeks.get(m) or {}).get("orders") or 0) for m in mondays]
    revenue = [float((weeks.get(m) or {}).get("revenue") or 0) for m in mondays]
    user._board_weekly_conversions = (orders, revenue)
    return orders, revenue


@step_figure(9)
def attributed_this_week(user: Any) -> Figure:
    orders, _revenue = _weekly_conversions(user)
    return Figure(
        _("orders attributed this week"),
        int(orders[-1]),
        url=reverse("hq:campaign-compare"),
        trend=orders,
        trend_period=_("a week"),
    )


@step_figure(9)
def revenue_this_week(user: Any) -> Figure:
    _orders, revenue = _weekly_conversions(user)
    return Figure(
        _("revenue attributed this week (¥)"),
        f"{revenue[-1]:,.0f}",
        url=reverse("hq:campaign-compare"),
        trend=revenue,
        trend_period=_("a week"),
    )
