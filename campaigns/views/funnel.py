"""The campaign funnel pages (全监控): one broadcast's or one campaign's funnel with its
breakdowns, and every campaign side by side — read from the funnel facts only."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Broadcast, Campaign, FunnelFact, GatewayKind
from campaigns.selectors.funnel import (
    BREAKDOWNS,
    Funnel,
    campaign_comparison,
    conversions_by_touchpoint,
    funnel_breakdown,
    funnel_facts,
    funnel_sum,
)
from campaigns.views.hq import _broadcast
from campaigns.views.journeys import _campaign
from scrm.core.access import hq_required
from scrm.core.exports import table_download, wanted_format
from scrm.core.params import positive_int, report_range
from scrm.org.models import Store

BROADCAST_BREAKDOWNS = ("day", "hour", "store", "guide")
CAMPAIGN_BREAKDOWNS = ("wave", "step", "day", "hour", "store", "guide")


def _store_filter(request: HttpRequest) -> tuple[QuerySet[Store], int | None]:
    """The stores the user may pick, and the one picked; another store's id → 404."""
    stores: QuerySet[Store] = Store.objects.for_user(request.user).order_by("code")
    raw = request.GET.get("store", "")
    if not raw:
        return stores, None
    wanted = positive_int(raw)
    if wanted is None or not stores.filter(pk=wanted).exists():
        raise Http404
    return stores, wanted


def _range(request: HttpRequest, *, default_days: int) -> tuple[date, date]:
    start, end, problem = report_range(
        request.GET, today=timezone.localdate(), default_days=default_days
    )
    if problem:
        messages.error(request, problem)
    return start, end


def _row_label(by: str, row: dict[str, Any]) -> str:
    if by == "day":
        return row["day"].isoformat()
    if by == "hour":
        return f"{row['hour']:02d}:00" if row["hour"] is not None else _("Not sent")
    if by == "store":
        return row["store__name"] or _("No store")
    if by == "guide":
        return row["guide__username"] or _("No guide")
    if by == "step":
        return _("Step %(n)s") % {"n": row["journey_step__position"]}
    return _("Step %(n)s, %(day)s") % {
        "n": row["journey_step__position"],
        "day": row["broadcast__wave_day"],
    }


FUNNEL_COLUMNS: list[tuple[str, Any]] = [
    ("audience", lambda f: f["audience"]),
    ("not sent", lambda f: f.suppressed),
    ("control group", lambda f: f["held_out"]),
    ("waiting", lambda f: f["waiting"]),
    ("sent", lambda f: f["sent"]),
    ("failed", lambda f: f["failed"]),
    ("opened", lambda f: f["opened"]),
    ("clicked", lambda f: f["clicked"]),
    ("orders converted", lambda f: f["converted"]),
    ("revenue", lambda f: f["revenue"]),
]


def _column_titles() -> list[str]:
    return [
        _("Audience"),
        _("Not sent"),
        _("Control group"),
        _("Waiting"),
        _("Sent"),
        _("Failed"),
        _("Opened"),
        _("Clicked"),
        _("Orders converted"),
        _("Revenue"),
    ]


def _funnel_page(
    request: HttpRequest,
    *,
    facts: QuerySet[FunnelFact],
    owner: Broadcast | Campaign,
    kind: str,
    breakdowns: tuple[str, ...],
    stores: QuerySet[Store],
    store_id: int | None,
    start: date,
    end: date,
) -> HttpResponse:
    user: Any = request.user
    by = request.GET.get("by", breakdowns[0])
    if by not in breakdowns:
        by = breakdowns[0]
    whole = bool(user.is_hq) and store_id is None
    breakdown = funnel_breakdown(facts, by)
    totals = funnel_sum(breakdown, cost=owner.cost if whole else None)
    rows = [{"label": _row_label(by, row), "funnel": Funnel(row)} for row in breakdown]
    file_format = wanted_format(request)
    if file_format:
        return table_download(
            file_format=file_format,
            filename=f"funnel-{kind}-{owner.pk}-by-{by}",
            header=[str(BREAKDOWNS[by][1]), *_column_titles()],
            rows=(
                [row["label"], *(value(row["funnel"]) for _key, value in FUNNEL_COLUMNS)]
                for row in rows
            ),
        )
    stages = [
        (_("Audience"), totals["audience"]),
        (_("Sent"), totals["sent"]),
        (_("Opened"), totals["opened"]),
        (_("Clicked"), totals["clicked"]),
        (_("Orders converted"), totals["converted"]),
    ]
    chart = {
        "type": "bar",
        "labels": [str(label) for label, _value in stages],
        "datasets": [{"label": str(owner), "data": [value for _label, value in stages]}],
    }
    return render(
        request,
        "campaigns/hq/funnel.html",
        {
            "owner": owner,
            "kind": kind,
            "totals": totals,
            "rows": rows,
            "by": by,
            "breakdowns": [(key, BREAKDOWNS[key][1]) for key in breakdowns],
            "chart": chart,
            "stores": stores,
            "store_id": store_id,
            "start": start,
            "end": end,
            "whole": whole,
            "by_touchpoint": conversions_by_touchpoint(
                user=user,
                broadcast=owner if isinstance(owner, Broadcast) else None,
                campaign=owner if isinstance(owner, Campaign) else None,
                # Messages sent in the range, as the funnel's days are.
                start=start,
                end=end,
                store_id=store_id,
            ),
        },
    )


@hq_required
def broadcast_funnel(request: HttpRequest, pk: int) -> HttpResponse:
    broadcast = _broadcast(request, pk)
    stores, store_id = _store_filter(request)
    # A broadcast's whole life by default: its facts span only its own sending days.
    start, end = _range(request, default_days=366)
    facts = funnel_facts(
        user=request.user, broadcast=broadcast, start=start, end=end, store_id=store_id
    )
    return _funnel_page(
        request,
        facts=facts,
        owner=broadcast,
        kind="broadcast",
        breakdowns=BROADCAST_BREAKDOWNS,
        stores=stores,
        store_id=store_id,
        start=start,
        end=end,
    )


@hq_required
def campaign_funnel(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign(request, pk)
    stores, store_id = _store_filter(request)
    start, end = _range(request, default_days=366)
    facts = funnel_facts(
        user=request.user, campaign=campaign, start=start, end=end, store_id=store_id
    )
    return _funnel_page(
        request,
        facts=facts,
        owner=campaign,
        kind="campaign",
        breakdowns=CAMPAIGN_BREAKDOWNS,
        stores=stores,
        store_id=store_id,
        start=start,
        end=end,
    )


@hq_required
def campaign_compare(request: HttpRequest) -> HttpResponse:
    """Every campaign and broadcast that sent in the range, side by side."""
    user: Any = request.user
    stores, store_id = _store_filter(request)
    start, end = _range(request, default_days=30)
    channel = request.GET.get("channel", "")
    if channel and channel not in GatewayKind.values:
        messages.error(request, _("Unknown channel: showing every channel."))
        channel = ""
    facts = funnel_facts(user=user, start=start, end=end, store_id=store_id, channel=channel)
    whole = bool(user.is_hq) and store_id is None
    rows = campaign_comparison(facts, with_cost=whole)
    # Head office's broadcasts reach managers' customers: their part is shown, but the
    # broadcast's own pages are head office's.
    linkable: dict[str, set[int]] = {
        "broadcast": set(
            Broadcast.objects.for_user(user)
            .filter(pk__in=[r["object"].pk for r in rows if r["kind"] == "broadcast"])
            .values_list("pk", flat=True)
        ),
        "campaign": set(
            Campaign.objects.for_user(user)
            .filter(pk__in=[r["object"].pk for r in rows if r["kind"] == "campaign"])
            .values_list("pk", flat=True)
        ),
    }
    for row in rows:
        row["linked"] = row["object"].pk in linkable[row["kind"]]
    file_format = wanted_format(request)
    if file_format:
        return table_download(
            file_format=file_format,
            filename=f"campaign-comparison-{start}-{end}",
            header=[
                _("Campaign or broadcast"),
                *_column_titles(),
                _("Cost"),
                _("ROI"),
                _("Uplift"),
            ],
            rows=(
                [
                    str(row["object"]),
                    *(value(row["funnel"]) for _key, value in FUNNEL_COLUMNS),
                    row["funnel"].cost if whole else "",
                    _ratio(row["funnel"].roi),
                    _ratio(row["funnel"].uplift),
                ]
                for row in rows
            ),
        )
    top = rows[:15]
    chart = {
        "type": "bar",
        "labels": [str(row["object"]) for row in top],
        "datasets": [
            {"label": _("Revenue"), "data": [float(row["funnel"]["revenue"]) for row in top]}
        ],
    }
    return render(
        request,
        "campaigns/hq/campaign_compare.html",
        {
            "rows": rows,
            "chart": chart,
            "stores": stores,
            "store_id": store_id,
            "start": start,
            "end": end,
            "channel": channel,
            "channels": GatewayKind.choices,
            "whole": whole,
        },
    )


def _ratio(value: Any) -> str:
    return "" if value is None else f"{float(value):.4f}"
