"""What the dashboards show, read from the daily aggregates only (never members, orders
or the ledger), for one user's stores (`for_user`), a date range and optionally a store.

Each selector returns a `Dashboard`: headline figures, a chart (Chart.js data) and
tables; the first table is the page's main one, and every table downloads as it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import DateField, F, Func, Max, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics.models import (
    CohortMonth,
    Cursor,
    LifecycleFlowDay,
    PointsDay,
    PoolDay,
    RfmMoveDay,
    SalesDay,
    SnapshotDay,
    SnapshotDimension,
)
from members.models import Channel, LifecycleStage, RfmClass, Tier

WEEKLY_AFTER_DAYS = 62
CHANNEL_NAMES: dict[str, Any] = {**dict(Channel.choices), "": gettext_lazy("Unknown")}
STAGE_NAMES: dict[str, Any] = {**dict(LifecycleStage.choices), "": gettext_lazy("New in pool")}
STAGE_ORDER = [value for value, _label in LifecycleStage.choices]
RFM_NAMES: dict[str, Any] = {**dict(RfmClass.choices), "": gettext_lazy("No class yet")}
RFM_ORDER = [value for value, _label in RfmClass.choices]


@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    store_id: int | None = None
    channel: str = ""


@dataclass
class Table:
    title: str | Promise
    header: list[str | Promise]
    rows: list[list[Any]]


@dataclass
class Dashboard:
    chart: dict[str, Any]
    tables: dict[str, Table]
    figures: list[tuple[str | Promise, Any]] = field(default_factory=list)
    note: str | Promise = ""

    @property
    def empty(self) -> bool:
        return not any(table.rows for table in self.tables.values())


def _days(model: Any, user: Any, filters: Filters, field_name: str = "day") -> QuerySet[Any]:
    rows = model.objects.for_user(user).filter(
        **{f"{field_name}__gte": filters.start, f"{field_name}__lte": filters.end}
    )
    if filters.store_id is not None:
        rows = rows.filter(store_id=filters.store_id)
    return rows


def _period(day: date, weekly: bool) -> date:
    return day - timedelta(days=day.weekday()) if weekly else day


class WeekStart(Func):
    """The Monday of a date's week, by date arithmetic (date_trunc would turn every row's
    date into a timestamp with time zone and back)."""

    template = "(%(expressions)s - (EXTRACT(ISODOW FROM %(expressions)s)::integer - 1))"
    output_field = DateField()


def _by_period(rows: QuerySet[Any], weekly: bool) -> QuerySet[Any]:
    """`rows` with a `period` column: the day, or the Monday of its week — grouped in the
    database, so a year arrives as 52 weeks rather than 365 days to add up here."""
    return rows.annotate(period=WeekStart("day") if weekly else F("day"))


def _periods(filters: Filters, weekly: bool) -> list[date]:
    periods: list[date] = []
    day = filters.start
    while day <= filters.end:
        period = _period(day, weekly)
        if not periods or periods[-1] != period:
            periods.append(period)
        day += timedelta(days=1)
    return periods


def figures_as_of() -> Any:
    """When the incremental reads last caught up (the oldest of the cursors)."""
    return Cursor.objects.order_by("read_until").values_list("read_until", flat=True).first()


def pool_growth(*, user: Any, filters: Filters) -> Dashboard:
    """New contacts per channel and day (per week over two months), and new members."""
    weekly = (filters.end - filters.start).days >= WEEKLY_AFTER_DAYS
    sums: dict[tuple[date, str], list[int]] = {
        (row["period"], row["channel"]): [row["contacts"], row["joined"]]
        for row in _by_period(_days(PoolDay, user, filters), weekly)
        .values("period", "channel")
        .annotate(contacts=Sum("new_contacts"), joined=Sum("new_members"))
    }
    periods = _periods(filters, weekly)
    channels = sorted({channel for _period_, channel in sums}, key=str)
    chart = {
        "type": "bar",
        "stacked": True,
        "labels": [period.isoformat() for period in periods],
        "datasets": [
            {
                "label": str(CHANNEL_NAMES.get(channel, channel)),
                "data": [sums.get((period, channel), [0, 0])[0] for period in periods],
            }
            for channel in channels
        ],
    }
    rows = [
        [period, CHANNEL_NAMES.get(channel, channel), values[0], values[1]]
        for (period, channel), values in sorted(sums.items(), key=lambda item: str(item[0]))
    ]
    return Dashboard(
        chart=chart,
        tables={
            "pool": Table(
                _("New contacts by channel"),
                [
                    _("Week from") if weekly else _("Day"),
                    _("Source channel"),
                    _("New contacts"),
                    _("New members"),
                ],
                rows,
            )
        },
        figures=[
            (_("New contacts"), sum(row[2] for row in rows)),
            (_("New members"), sum(row[3] for row in rows)),
        ],
    )


def _latest_snapshot(user: Any, filters: Filters, dimension: str) -> tuple[date | None, dict]:
    """The distribution on the last snapshot day of the range: {value: members}."""
    snapshots = _days(SnapshotDay, user, filters).filter(dimension=dimension)
    day = snapshots.aggregate(day=Max("day"))["day"]
    if day is None:
        return None, {}
    counts = {
        row["value"]: row["members"]
        for row in snapshots.filter(day=day).values("value").annotate(members=Sum("members"))
    }
    return day, counts


def lifecycle(*, user: Any, filters: Filters) -> Dashboard:
    """The stage distribution on the end date (its last snapshot) and the flows between
    stages in the range."""
    day, counts = _latest_snapshot(user, filters, SnapshotDimension.STAGE)
    stages = [stage for stage in STAGE_ORDER if counts.get(stage)]
    flows = list(
        _days(LifecycleFlowDay, user, filters)
        .values("from_stage", "to_stage")
        .annotate(members=Sum("members"))
        .order_by("-members", "from_stage", "to_stage")
    )
    return Dashboard(
        chart={
            "type": "bar",
            "labels": [str(STAGE_NAMES[stage]) for stage in stages],
            "datasets": [{"label": _("Members"), "data": [counts[stage] for stage in stages]}],
        },
        tables={
            "flows": Table(
                _("Flows between stages"),
                [_("From"), _("To"), _("Members")],
                [
                    [
                        STAGE_NAMES.get(row["from_stage"], row["from_stage"]),
                        STAGE_NAMES.get(row["to_stage"], row["to_stage"]),
                        row["members"],
                    ]
                    for row in flows
                ],
            ),
            "distribution": Table(
                _("Distribution on %(day)s") % {"day": day.isoformat() if day else "—"},
                [_("Stage"), _("Members")],
                [[STAGE_NAMES[stage], counts[stage]] for stage in stages],
            ),
        },
        figures=[
            (_("Members on the end date"), sum(counts.values())),
            (_("Stage changes in the range"), sum(row["members"] for row in flows)),
        ],
    )


def tiers(*, user: Any, filters: Filters) -> Dashboard:
    """Members per tier on each snapshot day of the range — over two months, on each
    week's last snapshot day (a distribution is a stock: the week ends as its last day
    does)."""
    weekly = (filters.end - filters.start).days >= WEEKLY_AFTER_DAYS
    names: dict[str, Any] = {str(pk): name for pk, name in Tier.objects.values_list("pk", "name")}
    names[""] = _("No tier")
    counts: dict[tuple[date, str], int] = {
        (row["day"], row["value"]): row["members"]
        for row in _days(SnapshotDay, user, filters)
        .filter(dimension=SnapshotDimension.TIER)
        .values("day", "value")
        .annotate(members=Sum("members"))
    }
    days = sorted({day for day, _value in counts})
    if weekly:
        last_of_week = {_period(day, weekly=True): day for day in days}
        days = sorted(last_of_week.values())
    values = sorted({value for _day, value in counts}, key=lambda v: (v == "", str(names.get(v))))
    return Dashboard(
        chart={
            "type": "line",
            "labels": [day.isoformat() for day in days],
            "datasets": [
                {
                    "label": str(names.get(value, value)),
                    "data": [counts.get((day, value), 0) for day in days],
                }
                for value in values
            ],
        },
        tables={
            "tiers": Table(
                _("Members per tier"),
                [_("Day"), _("Tier"), _("Members")],
                [
                    [day, names.get(value, value), counts[(day, value)]]
                    for day in days
                    for value in values
                    if (day, value) in counts
                ],
            )
        },
        figures=[
            (
                _("Tiered members on the end date"),
                sum(counts.get((days[-1], value), 0) for value in values if value) if days else 0,
            ),
        ],
    )


def points(*, user: Any, filters: Filters) -> Dashboard:
    """Activity points issued, redeemed, expired and adjusted per day, and the
    outstanding balance (the liability) at each day's snapshot — by the week over two
    months, the outstanding balance then being the week's last snapshot."""
    weekly = (filters.end - filters.start).days >= WEEKLY_AFTER_DAYS
    daily: dict[date, dict[str, Any]] = {}
    for row in (
        _days(PointsDay, user, filters)
        .values("day")
        .annotate(
            issued=Sum("issued"),
            redeemed=Sum("redeemed"),
            expired=Sum("expired"),
            adjusted=Sum("adjusted"),
            outstanding=Sum("outstanding"),
        )
        .order_by("day")
    ):
        cell = daily.setdefault(
            _period(row["day"], weekly),
            {"issued": 0, "redeemed": 0, "expired": 0, "adjusted": 0, "outstanding": None},
        )
        for name in ("issued", "redeemed", "expired", "adjusted"):
            cell[name] += row[name] or 0
        if row["outstanding"] is not None:
            cell["outstanding"] = row["outstanding"]
    labels = _periods(filters, weekly=weekly)
    figures = ("issued", "redeemed", "expired", "adjusted")
    chart_names = {
        "issued": _("Issued"),
        "redeemed": _("Redeemed"),
        "expired": _("Expired"),
        "outstanding": _("Outstanding"),
    }
    datasets: list[dict[str, Any]] = [
        {"label": str(chart_names[name]), "data": [daily.get(d, {}).get(name) or 0 for d in labels]}
        for name in ("issued", "redeemed", "expired")
    ]
    datasets.append(
        {
            "label": str(chart_names["outstanding"]),
            "data": [daily.get(d, {}).get("outstanding") for d in labels],
            "type": "line",
            "yAxisID": "y1",
        }
    )
    rows = [
        [day, *(daily[day][name] for name in figures), daily[day]["outstanding"]]
        for day in sorted(daily)
    ]
    last_outstanding = next(
        (
            daily[day]["outstanding"]
            for day in sorted(daily, reverse=True)
            if daily[day]["outstanding"] is not None
        ),
        None,
    )
    return Dashboard(
        chart={"type": "bar", "labels": [d.isoformat() for d in labels], "datasets": datasets},
        tables={
            "points": Table(
                _("Activity points per week") if weekly else _("Activity points per day"),
                [
                    _("Week from") if weekly else _("Day"),
                    _("Issued"),
                    _("Redeemed"),
                    _("Expired"),
                    _("Adjusted"),
                    _("Outstanding"),
                ],
                rows,
            )
        },
        figures=[
            (_("Issued"), sum(row[1] for row in rows)),
            (_("Redeemed"), sum(row[2] for row in rows)),
            (_("Expired"), sum(row[3] for row in rows)),
            (_("Outstanding"), last_outstanding if last_outstanding is not None else "—"),
        ],
    )


def _highs(rfm_class: str) -> int:
    return rfm_class.count("H")


def rfm(*, user: Any, filters: Filters) -> Dashboard:
    """The RFM class distribution on the end date and the moves between classes at the
    nightly reviews of the range, per member's home store."""
    day, counts = _latest_snapshot(user, filters, SnapshotDimension.RFM)
    classes = [value for value in [*RFM_ORDER, ""] if counts.get(value)]
    moves = list(
        _days(RfmMoveDay, user, filters)
        .values("from_class", "to_class")
        .annotate(members=Sum("members"))
        .order_by("-members", "from_class", "to_class")
    )

    def direction(row: dict[str, Any]) -> Any:
        if not row["from_class"]:
            return _("First class")
        up = _highs(row["to_class"]) - _highs(row["from_class"])
        return _("Up") if up > 0 else _("Down") if up < 0 else _("Sideways")

    return Dashboard(
        chart={
            "type": "bar",
            "labels": [str(RFM_NAMES[value]) for value in classes],
            "datasets": [{"label": _("Members"), "data": [counts[value] for value in classes]}],
        },
        tables={
            "moves": Table(
                _("Moves between classes"),
                [_("From"), _("To"), _("Direction"), _("Members")],
                [
                    [
                        RFM_NAMES.get(row["from_class"], row["from_class"]),
                        RFM_NAMES.get(row["to_class"], row["to_class"]),
                        direction(row),
                        row["members"],
                    ]
                    for row in moves
                ],
            ),
            "distribution": Table(
                _("Distribution on %(day)s") % {"day": day.isoformat() if day else "—"},
                [_("RFM class"), _("Members")],
                [[RFM_NAMES[value], counts[value]] for value in classes],
            ),
        },
        figures=[
            (_("Buyers with a class"), sum(counts.values())),
            (_("Moved up"), sum(r["members"] for r in moves if direction(r) == _("Up"))),
            (_("Moved down"), sum(r["members"] for r in moves if direction(r) == _("Down"))),
        ],
    )


def sales(*, user: Any, filters: Filters) -> Dashboard:
    """Orders and revenue net of refunds per order channel, by the day they were paid
    (by the week over two months: a year of days is too many bars and rows to read)."""
    weekly = (filters.end - filters.start).days >= WEEKLY_AFTER_DAYS
    rows_by_key: dict[tuple[date, str], dict[str, Any]] = {}
    for row in (
        _by_period(_days(SalesDay, user, filters), weekly)
        .values("period", "channel")
        .annotate(
            orders_=Sum("orders"),
            revenue_=Sum("revenue"),
            refunded_=Sum("refunded"),
            first_=Sum("first_orders"),
        )
    ):
        key = (row["period"], row["channel"])
        cell = rows_by_key.setdefault(
            key,
            {"orders_": 0, "revenue_": Decimal("0.00"), "refunded_": Decimal("0.00"), "first_": 0},
        )
        for name in ("orders_", "revenue_", "refunded_", "first_"):
            if row[name] is not None:
                cell[name] += row[name]
    labels = _periods(filters, weekly=weekly)
    channels = sorted({channel for _day, channel in rows_by_key})
    rows = [
        [
            day,
            CHANNEL_NAMES.get(channel, channel),
            row["orders_"],
            row["first_"],
            row["revenue_"],
            row["refunded_"],
            row["revenue_"] - row["refunded_"],
        ]
        for (day, channel), row in sorted(rows_by_key.items())
    ]
    return Dashboard(
        chart={
            "type": "bar",
            "stacked": True,
            "labels": [d.isoformat() for d in labels],
            "datasets": [
                {
                    "label": str(CHANNEL_NAMES.get(channel, channel)),
                    "data": [
                        float(
                            rows_by_key[(d, channel)]["revenue_"]
                            - rows_by_key[(d, channel)]["refunded_"]
                        )
                        if (d, channel) in rows_by_key
                        else 0
                        for d in labels
                    ],
                }
                for channel in channels
            ],
        },
        tables={
            "sales": Table(
                _("Sales by channel"),
                [
                    _("Week from") if weekly else _("Day"),
                    _("Channel"),
                    _("Orders"),
                    _("First orders"),
                    _("Revenue"),
                    _("Refunded"),
                    _("Net revenue"),
                ],
                rows,
            )
        },
        figures=[
            (_("Orders"), sum(row[2] for row in rows)),
            (_("Net revenue"), sum((row[6] for row in rows), Decimal("0"))),
        ],
    )


def cohorts(*, user: Any, filters: Filters) -> Dashboard:
    """Per acquisition month (members created in it, in the range): the share who bought
    in each later calendar month and the cumulative revenue (net of refunds) per member."""
    first_month = filters.start.replace(day=1)
    cells: QuerySet[Any] = CohortMonth.objects.for_user(user).filter(
        cohort__gte=first_month, cohort__lte=filters.end
    )
    sizes_qs = _days(PoolDay, user, Filters(first_month, filters.end, filters.store_id))
    if filters.store_id is not None:
        cells = cells.filter(store_id=filters.store_id)
    if filters.channel:
        cells = cells.filter(channel=filters.channel)
        sizes_qs = sizes_qs.filter(channel=filters.channel)
    sizes = {
        row["month"]: row["members"]
        for row in sizes_qs.annotate(month=TruncMonth("day"))
        .values("month")
        .annotate(members=Sum("new_contacts"))
    }
    grid: dict[date, dict[int, dict[str, Any]]] = {}
    for row in cells.values("cohort", "months_after").annotate(
        buyers_=Sum("buyers"), revenue_=Sum("revenue"), refunded_=Sum("refunded")
    ):
        grid.setdefault(row["cohort"], {})[row["months_after"]] = row
    rows: list[list[Any]] = []
    datasets = []
    longest = max((max(months) for months in grid.values()), default=-1)
    for cohort in sorted(set(grid) | {month for month, size in sizes.items() if size}):
        size = sizes.get(cohort, 0)
        months = grid.get(cohort, {})
        cumulative = Decimal("0")
        retention_line: list[float | None] = []
        for months_after in range(0, max(months, default=0) + 1):
            cell = months.get(months_after)
            buyers = cell["buyers_"] if cell else 0
            net = cell["revenue_"] - cell["refunded_"] if cell else Decimal("0")
            cumulative += net
            retention = round(100 * buyers / size, 1) if size else None
            retention_line.append(retention)
            rows.append(
                [
                    cohort.strftime("%Y-%m"),
                    months_after,
                    size,
                    buyers,
                    retention,
                    net,
                    (cumulative / size).quantize(Decimal("0.01")) if size else None,
                ]
            )
        datasets.append({"label": cohort.strftime("%Y-%m"), "data": retention_line})
    return Dashboard(
        chart={
            "type": "line",
            "labels": [str(k) for k in range(0, longest + 1)],
            "datasets": datasets,
            "percent": True,
        },
        tables={
            "cohorts": Table(
                _("Retention and revenue per member by months since acquisition"),
                [
                    _("Cohort"),
                    _("Months after"),
                    _("Members acquired"),
                    _("Buyers"),
                    _("Retention %"),
                    _("Net revenue"),
                    _("Cumulative revenue per member"),
                ],
                rows,
            )
        },
        figures=[(_("Members acquired"), sum(sizes.values()))],
    )
