"""/hq/touchpoints/health/: which touchpoints bring people in, which bring good people,
and which dried up or turned sour — read from the daily figures, never from the events."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scrm.core.access import hq_required
from scrm.core.exports import table_download, wanted_format
from scrm.core.params import positive_int, report_range
from scrm.org.models import Store
from touchpoints.models import Channel, TouchpointAlert, TouchpointDay
from touchpoints.services.health import alert_acknowledge, alert_message

FIGURES = (
    "new_contacts",
    "new_members",
    "first_purchases",
    "unfollows",
    "reviews",
    "negative_reviews",
)


def date_range(request: HttpRequest) -> tuple[date, date]:
    start, end, problem = report_range(request.GET, today=timezone.localdate())
    if problem:
        messages.error(request, problem)
    return start, end


@hq_required
def health(request: HttpRequest) -> HttpResponse:
    start, end = date_range(request)
    days: QuerySet[Any] = TouchpointDay.objects.for_user(request.user).filter(
        day__gte=start, day__lte=end
    )
    stores: QuerySet[Any] = Store.objects.for_user(request.user).order_by("code")
    store_id = request.GET.get("store", "")
    if store_id:
        wanted = positive_int(store_id)
        if wanted is None or not stores.filter(pk=wanted).exists():
            raise Http404
        days = days.filter(touchpoint__store_id=wanted)
    channel_id = request.GET.get("channel", "")
    if positive_int(channel_id):
        days = days.filter(touchpoint__channel_id=positive_int(channel_id))
    sums = {name: Sum(name) for name in FIGURES}
    rows = list(
        days.values(
            "touchpoint_id",
            "touchpoint__name",
            "touchpoint__channel__name",
            "touchpoint__store__name",
        )
        .annotate(**sums)
        .order_by("-new_contacts", "touchpoint__name")
    )
    for row in rows:
        row["conversion"] = (
            row["first_purchases"] / row["new_contacts"] if row["new_contacts"] else None
        )
        row["negative_share"] = row["negative_reviews"] / row["reviews"] if row["reviews"] else None
    if file_format := wanted_format(request):
        return _download(rows, start, end, file_format=file_format)
    daily = {row["day"]: row for row in days.values("day").annotate(**sums).order_by("day")}
    labels: list[str] = []
    series: dict[str, list[int]] = {name: [] for name in FIGURES}
    day = start
    while day <= end:
        labels.append(day.isoformat())
        for name in FIGURES:
            series[name].append((daily.get(day) or {}).get(name) or 0)
        day += timedelta(days=1)
    chart = {
        "labels": labels,
        "datasets": [
            {"label": _("New contacts"), "data": series["new_contacts"]},
            {"label": _("New members"), "data": series["new_members"]},
            {"label": _("First purchases"), "data": series["first_purchases"]},
            {"label": _("Unfollows"), "data": series["unfollows"]},
        ],
    }
    alerts: QuerySet[Any] = (
        TouchpointAlert.objects.for_user(request.user)
        .filter(status="open")
        .select_related("touchpoint")[:50]
    )
    return render(
        request,
        "touchpoints/hq/health.html",
        {
            "rows": rows,
            "chart": chart,
            "start": start,
            "end": end,
            "stores": stores,
            "store_id": store_id,
            "channels": Channel.objects.order_by("name"),
            "channel_id": channel_id,
            "alerts": [{"alert": a, "message": alert_message(a)} for a in alerts],
            "totals": {name: sum(series[name]) for name in FIGURES},
        },
    )


def _download(
    rows: list[dict[str, Any]], start: date, end: date, *, file_format: str
) -> HttpResponse:
    return table_download(
        file_format=file_format,
        filename=f"touchpoint-health-{start}-{end}",
        header=[
            _("Touchpoint"),
            _("Channel"),
            _("Store"),
            _("New contacts"),
            _("New members"),
            _("First purchases"),
            _("Conversion"),
            _("Unfollows"),
            _("Reviews"),
            _("Negative reviews"),
        ],
        rows=(
            [
                row["touchpoint__name"],
                row["touchpoint__channel__name"],
                row["touchpoint__store__name"] or "",
                row["new_contacts"],
                row["new_members"],
                row["first_purchases"],
                f"{row['conversion']:.3f}" if row["conversion"] is not None else "",
                row["unfollows"],
                row["reviews"],
                row["negative_reviews"],
            ]
            for row in rows
        ),
    )


@hq_required
@require_POST
def alert_ack(request: HttpRequest, pk: int) -> HttpResponse:
    alert: TouchpointAlert | None = (
        TouchpointAlert.objects.for_user(request.user).filter(pk=pk, status="open").first()
    )
    if alert is None:
        raise Http404
    alert_acknowledge(alert=alert, actor=request.user)
    messages.success(request, _("Alert acknowledged."))
    return redirect("hq:touchpoint-health")
