from datetime import timedelta
from typing import Any

from django.db.models import QuerySet, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scrm.core.board import Figure, home_panel, step_figure
from touchpoints.models import ImportJob


def _this_week(user: Any) -> QuerySet[ImportJob]:
    return ImportJob.objects.for_user(user).filter(
        created_at__gte=timezone.now() - timedelta(days=7)
    )


@step_figure(2)
def imports_this_week(user: Any) -> Figure:
    return Figure(_("imports this week"), _this_week(user).count())


@step_figure(2)
def created_this_week(user: Any) -> Figure:
    added = _this_week(user).aggregate(n=Sum("created"))["n"]
    return Figure(_("people added by imports"), added or 0)


@step_figure(5)
def touchpoints_healthy(user: Any) -> Figure:
    from touchpoints.models import Touchpoint

    active: QuerySet[Any] = Touchpoint.objects.for_user(user).filter(active=True)
    healthy = active.exclude(alerts__status="open").count()
    return Figure(_("touchpoints healthy"), healthy, url=reverse("hq:touchpoints"))


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
