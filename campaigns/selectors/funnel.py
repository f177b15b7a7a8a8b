"""Reads of the campaign funnel (全监控): totals, breakdowns and the campaign comparison,
from the funnel facts only (campaigns/models/funnel.py), scoped by who asks — a store
manager sees the part of each funnel that reached their stores' members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import F, QuerySet, Sum
from django.utils.translation import gettext_lazy as _

from campaigns.models import Broadcast, Campaign, ConversionFact, FunnelFact

COUNTS = (
    "audience",
    "opted_out",
    "frequency_cap",
    "no_identity",
    "not_friend",
    "limit_reached",
    "cancelled",
    "held_out",
    "waiting",
    "sent",
    "failed",
    "opened",
    "clicked",
    "converted",
    "sent_buyers",
    "control_buyers",
)
AMOUNTS = ("revenue", "sent_buyer_revenue", "control_revenue")
SUPPRESSION = (
    ("opted_out", _("Opted out")),
    ("frequency_cap", _("Frequency cap")),
    ("no_identity", _("No identity for the channel")),
    ("not_friend", _("Not a WeCom friend")),
    ("limit_reached", _("Monthly limit reached")),
    ("cancelled", _("Broadcast cancelled")),
)
SUMS = {name: Sum(name) for name in (*COUNTS, *AMOUNTS)}

# How a funnel can be broken down: the fact columns grouped on, and the label shown.
BREAKDOWNS: dict[str, tuple[tuple[str, ...], Any]] = {
    "day": (("day",), _("Day")),
    "hour": (("hour",), _("Hour sent")),
    "store": (("store_id", "store__name"), _("Store")),
    "guide": (("guide_id", "guide__username"), _("Guide")),
    "step": (("journey_step__position",), _("Step")),
    "wave": (("broadcast_id", "broadcast__wave_day", "journey_step__position"), _("Wave")),
}


def _facts(
    model: Any,
    *,
    user: Any,
    broadcast: Broadcast | None = None,
    campaign: Campaign | None = None,
    start: date | None = None,
    end: date | None = None,
    store_id: int | None = None,
) -> QuerySet[Any]:
    """Funnel or conversion facts the user may see, narrowed by owner, days and store."""
    facts: QuerySet[Any] = model.objects.for_user(user)
    if broadcast is not None:
        facts = facts.filter(broadcast=broadcast)
    if campaign is not None:
        facts = facts.filter(campaign=campaign)
    if start is not None:
        facts = facts.filter(day__gte=start)
    if end is not None:
        facts = facts.filter(day__lte=end)
    if store_id is not None:
        facts = facts.filter(store_id=store_id)
    return facts


def funnel_facts(*, user: Any, channel: str = "", **filters: Any) -> QuerySet[FunnelFact]:
    """`filters`: broadcast, campaign, start, end, store_id (see `_facts`)."""
    facts = _facts(FunnelFact, user=user, **filters)
    if channel:
        facts = facts.filter(channel=channel)
    return facts


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    for name in COUNTS:
        row[name] = int(row.get(name) or 0)
    for name in AMOUNTS:
        row[name] = row.get(name) or Decimal("0")
    return row


@dataclass
class Funnel:
    """One funnel's figures, with the rates and ROI the pages show."""

    figures: dict[str, Any]
    cost: Decimal | None = None

    def __getitem__(self, name: str) -> Any:
        return self.figures[name]

    @property
    def suppressed(self) -> int:
        return sum(self.figures[name] for name, _label in SUPPRESSION)

    @property
    def suppression(self) -> list[tuple[Any, int]]:
        return [(label, self.figures[name]) for name, label in SUPPRESSION if self.figures[name]]

    def share(self, part: str, whole: str) -> float | None:
        return self.figures[part] / self.figures[whole] if self.figures[whole] else None

    @property
    def open_rate(self) -> float | None:
        return self.share("opened", "sent")

    @property
    def click_rate(self) -> float | None:
        return self.share("clicked", "sent")

    @property
    def roi(self) -> Decimal | None:
        """(Revenue − cost) / cost; None without a cost."""
        if not self.cost:
            return None
        return (self.figures["revenue"] - self.cost) / self.cost

    @property
    def has_control(self) -> bool:
        return bool(self.figures["held_out"])

    @property
    def sent_buyer_rate(self) -> float | None:
        return self.share("sent_buyers", "sent")

    @property
    def control_buyer_rate(self) -> float | None:
        return self.share("control_buyers", "held_out")

    @property
    def uplift(self) -> float | None:
        """Percentage points more buyers among those sent than in the control group."""
        if self.sent_buyer_rate is None or self.control_buyer_rate is None:
            return None
        return self.sent_buyer_rate - self.control_buyer_rate

    @property
    def incremental_revenue(self) -> Decimal | None:
        """What the message added: spend per member sent, less spend per control member,
        times the members sent."""
        sent, held = self.figures["sent"], self.figures["held_out"]
        if not sent or not held:
            return None
        per_sent = self.figures["sent_buyer_revenue"] / sent
        per_control = self.figures["control_revenue"] / held
        return ((per_sent - per_control) * sent).quantize(Decimal("0.01"))


def funnel_totals(facts: QuerySet[FunnelFact], *, cost: Decimal | None = None) -> Funnel:
    return Funnel(_clean(facts.aggregate(**SUMS)), cost=cost)


def funnel_sum(rows: list[dict[str, Any]], *, cost: Decimal | None = None) -> Funnel:
    """The totals of a breakdown's rows: every breakdown splits the same facts without
    overlap, so a page that shows one needs no second query for its totals."""
    figures: dict[str, Any] = dict.fromkeys(COUNTS, 0)
    figures.update(dict.fromkeys(AMOUNTS, Decimal("0")))
    for row in rows:
        for name in figures:
            figures[name] += row[name]
    return Funnel(figures, cost=cost)


def funnel_breakdown(facts: QuerySet[FunnelFact], by: str) -> list[dict[str, Any]]:
    """The facts summed per `by` (a key of BREAKDOWNS), in its natural order."""
    columns, _label = BREAKDOWNS[by]
    order = [F(columns[-1] if by == "wave" else columns[0]).asc(nulls_last=True)]
    if by == "wave":
        order = [F("broadcast__wave_day").asc(), F("journey_step__position").asc()]
    rows = facts.values(*columns).annotate(**SUMS).order_by(*order)
    return [_clean(dict(row)) for row in rows]


def campaign_comparison(
    facts: QuerySet[FunnelFact], *, with_cost: bool = True
) -> list[dict[str, Any]]:
    """One row per campaign (its waves together) and per broadcast outside campaigns:
    what each sent and sold, with its cost and ROI (`with_cost`: only for those who see
    the whole funnel — a store's part of the revenue against the whole cost would
    mislead), most revenue first."""
    rows: list[dict[str, Any]] = []
    by_campaign = facts.filter(campaign__isnull=False).values("campaign_id").annotate(**SUMS)
    names = {
        c.pk: c
        for c in Campaign.objects.filter(pk__in=[r["campaign_id"] for r in by_campaign]).only(
            "name", "cost", "holdout_percent"
        )
    }
    for row in by_campaign:
        campaign = names[row["campaign_id"]]
        rows.append(
            {"kind": "campaign", "object": campaign, "funnel": _funnel(row, campaign, with_cost)}
        )
    by_broadcast = facts.filter(campaign__isnull=True).values("broadcast_id").annotate(**SUMS)
    broadcasts = {
        b.pk: b
        for b in Broadcast.objects.filter(pk__in=[r["broadcast_id"] for r in by_broadcast]).only(
            "name", "cost", "channel", "holdout_percent"
        )
    }
    for row in by_broadcast:
        broadcast = broadcasts[row["broadcast_id"]]
        rows.append(
            {"kind": "broadcast", "object": broadcast, "funnel": _funnel(row, broadcast, with_cost)}
        )
    rows.sort(key=lambda r: (-r["funnel"]["revenue"], str(r["object"])))
    return rows


def _funnel(row: dict[str, Any], owner: Broadcast | Campaign, with_cost: bool) -> Funnel:
    return Funnel(_clean(dict(row)), cost=owner.cost if with_cost else None)


def conversions_by_touchpoint(*, user: Any, **filters: Any) -> list[dict[str, Any]]:
    """Orders converted and their revenue per touchpoint the customers were first won
    through, for messages sent from `start` to `end`, most revenue first; scoped by the
    order's store. Read from the conversion facts, kept with the funnel facts.
    `filters`: broadcast, campaign, start, end, store_id (see `_facts`)."""
    rows: Any = (
        _facts(ConversionFact, user=user, **filters)
        .values("touchpoint_id", "touchpoint__name", "touchpoint__channel__name")
        .annotate(orders=Sum("orders"), revenue=Sum("revenue"))
        .order_by("-revenue", "touchpoint__name")
    )
    return list(rows)
