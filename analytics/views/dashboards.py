"""/hq/monitor/: the dashboards. Each page validates its filters, calls one selector and
shows its chart and tables, or sends a table as CSV/XLSX (`?format=`, `?table=`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy

from analytics import selectors
from analytics.selectors import Dashboard, Filters
from members.models import Channel
from scrm.core.access import hq_required
from scrm.core.exports import table_download, wanted_format
from scrm.core.params import positive_int, report_range
from scrm.org.models import Store

DEFAULT_DAYS = 30

# key, url name, title, what it shows
DASHBOARDS = [
    (
        "pool",
        "hq:monitor-pool",
        gettext_lazy("Pool growth"),
        gettext_lazy("New contacts and new members per source channel."),
    ),
    (
        "lifecycle",
        "hq:monitor-lifecycle",
        gettext_lazy("Lifecycle"),
        gettext_lazy("Members per stage and the flows between stages."),
    ),
    (
        "tiers",
        "hq:monitor-tiers",
        gettext_lazy("Tiers"),
        gettext_lazy("Members per tier over time."),
    ),
    (
        "points",
        "hq:monitor-points",
        gettext_lazy("Points liability"),
        gettext_lazy("Activity points issued, redeemed, expired and outstanding."),
    ),
    (
        "rfm",
        "hq:monitor-rfm",
        gettext_lazy("RFM movement"),
        gettext_lazy("RFM classes and the moves between them at the nightly reviews."),
    ),
    (
        "sales",
        "hq:monitor-sales",
        gettext_lazy("Sales by channel"),
        gettext_lazy("Orders and revenue net of refunds per order channel."),
    ),
    (
        "cohorts",
        "hq:monitor-cohorts",
        gettext_lazy("Cohorts"),
        gettext_lazy("Retention and lifetime value by acquisition month and channel."),
    ),
]
TITLES = {key: title for key, _url, title, _summary in DASHBOARDS}


def _date_range(request: HttpRequest, default_days: int) -> tuple[date, date]:
    start, end, problem = report_range(
        request.GET, today=timezone.localdate(), default_days=default_days
    )
    if problem:
        messages.error(request, problem)
    return start, end


def _filters(request: HttpRequest, *, default_days: int = DEFAULT_DAYS) -> tuple[Filters, Any]:
    """The page's filters and the stores the user may pick; another user's or an unknown
    store is a 404, as if it did not exist."""
    start, end = _date_range(request, default_days)
    stores: QuerySet[Store] = Store.objects.for_user(request.user).order_by("code")
    raw_store = request.GET.get("store", "")
    store_id = None
    if raw_store:
        store_id = positive_int(raw_store)
        if store_id is None or not stores.filter(pk=store_id).exists():
            raise Http404
    channel = request.GET.get("channel", "")
    if channel not in Channel.values:
        channel = ""
    return Filters(start, end, store_id, channel), stores


def _page(
    request: HttpRequest,
    key: str,
    build: Callable[..., Dashboard],
    *,
    default_days: int = DEFAULT_DAYS,
    channels: bool = False,
) -> HttpResponse:
    filters, stores = _filters(request, default_days=default_days)
    board = build(user=request.user, filters=filters)
    file_format = wanted_format(request)
    if file_format:
        name = request.GET.get("table", "")
        table_key = name if name in board.tables else next(iter(board.tables))
        table = board.tables[table_key]
        return table_download(
            file_format=file_format,
            filename=f"{key}-{table_key}-{filters.start}-{filters.end}",
            header=table.header,
            rows=table.rows,
            sheet_title=str(table.title),
        )
    query = request.GET.copy()
    query.pop("table", None)
    query.pop("format", None)
    return render(
        request,
        f"analytics/hq/{key}.html",
        {
            "key": key,
            "title": TITLES[key],
            "board": board,
            "tables": list(board.tables.items()),
            "filters": filters,
            "stores": stores,
            "store_id": str(filters.store_id or ""),
            "channels": Channel.choices if channels else None,
            "query": query.urlencode(),
            "dashboards": DASHBOARDS,
            "scoped": not getattr(request.user, "is_hq", False),
        },
    )


@hq_required
def index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "analytics/hq/index.html",
        {"dashboards": DASHBOARDS, "as_of": selectors.figures_as_of()},
    )


@hq_required
def pool(request: HttpRequest) -> HttpResponse:
    return _page(request, "pool", selectors.pool_growth)


@hq_required
def lifecycle(request: HttpRequest) -> HttpResponse:
    return _page(request, "lifecycle", selectors.lifecycle)


@hq_required
def tiers(request: HttpRequest) -> HttpResponse:
    return _page(request, "tiers", selectors.tiers)


@hq_required
def points(request: HttpRequest) -> HttpResponse:
    return _page(request, "points", selectors.points)


@hq_required
def rfm(request: HttpRequest) -> HttpResponse:
    return _page(request, "rfm", selectors.rfm)


@hq_required
def sales(request: HttpRequest) -> HttpResponse:
    return _page(request, "sales", selectors.sales)


@hq_required
def cohorts(request: HttpRequest) -> HttpResponse:
    return _page(request, "cohorts", selectors.cohorts, default_days=180, channels=True)
