"""The nine-step member workflow (会员运营9步法) that /hq/ is organised around.

Apps contribute each step's live figures from their own `board.py` with
`@step_figure(n)`; the board and the navigation read the steps from here, so the
order and wording live in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass
class Figure:
    label: str | Promise
    value: Any
    url: str | None = None
    # The figure over the last periods, oldest first (drawn as a sparkline), and what a
    # period is ("a week", "a day").
    trend: list[float] | None = None
    trend_period: str | Promise = ""

    @property
    def change(self) -> float | None:
        """The last period against the one before, as a share (0.25 = 25 % up)."""
        if not self.trend or len(self.trend) < 2 or not self.trend[-2]:
            return None
        return (self.trend[-1] - self.trend[-2]) / self.trend[-2]


@dataclass
class Step:
    number: int
    key: str
    title: str | Promise
    chinese: str
    summary: str | Promise
    figures: list[Callable[[Any], Figure]] = field(default_factory=list)
    url_name: str | None = None


STEPS: list[Step] = [
    Step(
        1,
        "pool",
        _("Build the pool"),
        "建池子",
        _("Every contact is a member or prospect; one person is one member."),
        url_name="hq:members",
    ),
    Step(
        2,
        "traffic",
        _("Gather traffic"),
        "聚流量",
        _("Import members and orders from every channel and dedupe them into the pool."),
        url_name="hq:imports",
    ),
    Step(
        3,
        "observe",
        _("Observe"),
        "观用户",
        _("Tags, behaviour trail and the 360° member profile."),
        url_name="hq:tags",
    ),
    Step(
        4,
        "loyalty",
        _("Loyalty"),
        "保忠诚",
        _("Tiers, activity points and growth value, benefits, coupons and the points mall."),
        url_name="hq:loyalty",
    ),
    Step(
        5,
        "touchpoints",
        _("Open touchpoints"),
        "通触点",
        _("Channels, QR codes, stores and ads: their inflow, its quality, and alerts."),
        url_name="hq:touchpoint-health",
    ),
    Step(
        6,
        "segments",
        _("Segment"),
        "分群组",
        _("Rule segments on attributes, tags, behaviour and RFM, with live counts."),
        url_name="hq:segments",
    ),
    Step(
        7,
        "campaigns",
        _("Create campaigns"),
        "创活动",
        _("Campaigns from templates, aimed at segments."),
        url_name="hq:campaigns",
    ),
    Step(
        8,
        "automation",
        _("Execute automatically"),
        "自执行",
        _("Broadcasts, multi-wave journeys and event triggers, sent by the workers."),
        url_name="hq:broadcasts",
    ),
    Step(
        9,
        "monitor",
        _("Monitor"),
        "全监控",
        _("The funnel from audience to purchase by channel, store, guide and time."),
        url_name="hq:monitor",
    ),
]


def weekly_trend(rows: Iterable[tuple[Any, Any]], *, weeks: int = 8) -> list[float]:
    """Sum (day or datetime, amount) rows into `weeks` seven-day periods ending today,
    oldest first — the sparkline of a figure "this week". Rows outside are ignored."""
    today = timezone.localdate()
    first = today - timedelta(days=7 * weeks - 1)
    totals = [0.0] * weeks
    for when, amount in rows:
        day = timezone.localdate(when) if isinstance(when, datetime) else when
        if first <= day <= today:
            totals[(day - first).days // 7] += float(amount or 0)
    return totals


def trend_start(*, weeks: int = 8) -> datetime:
    """The first moment `weekly_trend` counts."""
    first = timezone.localdate() - timedelta(days=7 * weeks - 1)
    return timezone.make_aware(datetime.combine(first, time.min))


def step_figure(number: int) -> Callable[[Callable[[Any], Figure]], Callable[[Any], Figure]]:
    """Register a function `(user) -> Figure` as a live figure of step `number`."""

    def register(func: Callable[[Any], Figure]) -> Callable[[Any], Figure]:
        step = STEPS[number - 1]
        if func.__qualname__ not in {f.__qualname__ for f in step.figures}:
            step.figures.append(func)
        return func

    return register


def board_for(user: Any) -> list[dict[str, Any]]:
    return [{"step": step, "figures": [figure(user) for figure in step.figures]} for step in STEPS]


@dataclass(frozen=True)
class HomePanel:
    order: int
    template: str
    context: Callable[[Any], dict[str, Any] | None]


HOME_PANELS: dict[str, HomePanel] = {}


def home_panel(
    *, key: str, order: int, template: str
) -> Callable[[Callable[[Any], dict[str, Any] | None]], Callable[[Any], dict[str, Any] | None]]:
    """Register a panel for /hq/ above the board (alerts, notifications): a function
    `(user) -> context`, or None when the panel has nothing to show that user."""

    def register(
        func: Callable[[Any], dict[str, Any] | None],
    ) -> Callable[[Any], dict[str, Any] | None]:
        HOME_PANELS[key] = HomePanel(order, template, func)
        return func

    return register


def panels_for(user: Any) -> list[dict[str, Any]]:
    shown = []
    for panel in sorted(HOME_PANELS.values(), key=lambda p: p.order):
        context = panel.context(user)
        if context is not None:
            shown.append({"template": panel.template, "data": context})
    return shown


@home_panel(key="notifications", order=10, template="hq/_notifications.html")
def notifications_panel(user: Any) -> dict[str, Any] | None:
    from scrm.core.models import Notification

    unread = list(Notification.objects.filter(recipient=user, read_at__isnull=True)[:10])
    return {"notifications": unread} if unread else None
