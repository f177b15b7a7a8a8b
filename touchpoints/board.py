from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from scrm.core.board import Figure, home_panel, step_figure, trend_start, weekly_trend
from touchpoints.models import ImportJob


def _recent_imports(user: Any) -> list[tuple[Any, Any]]:
    jobs: Any = (
        ImportJob.objects.for_user(user)
        .filter(created_at__gte=trend_start())
        .values_list("created_at", "created")
    )
    return list(jobs)


@step_figure(2)
def imports_this_week(user: Any) -> Figure:
    jobs = _recent_imports(user)
    trend = weekly_trend((when, 1) for when, _created in jobs)
    return Figure(
        _("imports this week"),
        int(trend[-1]),
        url=reverse("hq:imports"),
        trend=trend,
        trend_period=_("a week"),
    )


@step_figure(2)
def created_this_week(user: Any) -> Figure:
    trend = weekly_trend(_recent_imports(user))
    return Figure(
        _("people added by imports"),
        int(trend[-1]),
        url=reverse("hq:imports"),
        trend=trend,
        trend_period=_("a week"),
    )


@step_figure(5)
def touchpoints_healthy(user: Any) -> Figure:
    from touchpoints.models import Touchpoint

    active: QuerySet[Any] = Touchpoint.objects.for_user(user).filter(active=True)
    healthy = active.exclude(alerts__status="open").count()
    return Figure(_("touchpoints healthy"), healthy, url=reverse("hq:touchpoints"))


@step_figure(5)
def touchpoint_inflow(user: Any) -> Figure:
    from touchpoints.models import TouchpointDay

    days: Any = (
        TouchpointDay.objects.for_user(user)
        .filter(day__gte=trend_start().date())
        .values_list("day", "new_contacts")
    )
    trend = weekly_trend(days)
    return Figure(
        _("contacts through touchpoints this week"),
        int(trend[-1]),
        url=reverse("hq:touchpoint-health"),
        trend=trend,
        trend_period=_("a week"),
    )


@step_figure(5)
def touchpoints_alerting(user: Any) -> Figure:
    from touchpoints.models import TouchpointAlert

    open_alerts: QuerySet[Any] = TouchpointAlert.objects.for_user(user).filter(status="open")
    return Figure(
        _("touchpoints alerting"),
        open_alerts.values("touchpoint").distinct().count(),
        url=reverse("hq:touchpoint-health"),
    )


@home_panel(key="touchpoint-alerts", order=20, template="touchpoints/hq/_alerts_panel.html")
def alerts_panel(user: Any) -> dict[str, Any] | None:
    from touchpoints.models import TouchpointAlert
    from touchpoints.services.health import alert_message

    alerts: list[Any] = list(
        TouchpointAlert.objects.for_user(user)
        .filter(status="open")
        .select_related("touchpoint")[:10]
    )
    if not alerts:
        return None
    return {"alerts": [{"alert": a, "message": alert_message(a)} for a in alerts]}
