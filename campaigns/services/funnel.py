"""Keeping the campaign funnel facts (campaigns/models/funnel.py) up to date.

A broadcast's facts are rebuilt whole — delete and one INSERT … SELECT grouped by the
recipient's store and guide, channel, and local day and hour sent, and its conversion
facts (orders converted per touchpoint the customers were won through) the same way from
its conversions — so a rebuild is
exact whatever changed (sends, failures, opens, clicks, conversions, refunds) and
running it twice changes nothing. Which broadcasts to rebuild:

- every 15 minutes (beat), the *active* ones: planned within the attribution window
  plus two days (their sends, opens and conversions are still coming in), or sending;
- nightly, those planned within the refund lookback (90 days), so a late refund or
  click on an older broadcast reaches its figures by the next morning.

Uplift needs a control group: for a broadcast with one, the members sent and those held
back are both checked for a purchase within the window after they were (or would have
been) sent the message — the same test for both groups, whatever the order is credited
to. Without a control group those figures stay zero and cost nothing to compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import AttributionSetting, Broadcast, BroadcastStatus
from campaigns.services.attribution import REFUND_LOOKBACK

ACTIVE_MARGIN = timedelta(days=2)

FACTS_SQL = """
WITH conv AS (
    SELECT delivery_id, count(*) AS orders, sum(revenue) AS revenue
    FROM campaigns_conversion WHERE broadcast_id = %(broadcast)s
    GROUP BY delivery_id
), bought AS (
    SELECT d.id AS delivery_id, sum(o.amount - o.refunded_amount) AS spend
    FROM campaigns_delivery d
    JOIN members_order o
      ON o.member_id = d.member_id AND o.paid_at > d.sent_at
     AND o.paid_at <= d.sent_at + %(window)s AND o.amount > o.refunded_amount
    WHERE %(with_control)s AND d.broadcast_id = %(broadcast)s
      AND d.status IN ('sent', 'held_out')
    GROUP BY d.id
)
INSERT INTO campaigns_funnelfact (
    broadcast_id, campaign_id, journey_step_id, channel, store_id, guide_id, day, hour,
    audience, opted_out, frequency_cap, no_identity, not_friend, limit_reached, cancelled,
    held_out, waiting, sent, failed, opened, clicked, converted, revenue,
    sent_buyers, sent_buyer_revenue, control_buyers, control_revenue)
SELECT d.broadcast_id, %(campaign)s, %(step)s, d.channel, m.home_store_id, m.guide_id,
       CASE WHEN d.status = 'sent' THEN (d.sent_at AT TIME ZONE %(tz)s)::date
            ELSE d.send_day END AS day,
       CASE WHEN d.status = 'sent'
            THEN extract(hour FROM d.sent_at AT TIME ZONE %(tz)s)::smallint END AS hour,
       count(*),
       count(*) FILTER (WHERE d.status = 'suppressed' AND d.reason = 'opted_out'),
       count(*) FILTER (WHERE d.status = 'suppressed' AND d.reason = 'frequency_cap'),
       count(*) FILTER (WHERE d.status = 'suppressed' AND d.reason = 'no_identity'),
       count(*) FILTER (WHERE d.status = 'suppressed' AND d.reason = 'not_friend'),
       count(*) FILTER (WHERE d.status = 'suppressed' AND d.reason = 'limit_reached'),
       count(*) FILTER (WHERE d.status = 'suppressed' AND d.reason = 'cancelled'),
       count(*) FILTER (WHERE d.status = 'held_out'),
       count(*) FILTER (WHERE d.status = 'planned'),
       count(*) FILTER (WHERE d.status = 'sent'),
       count(*) FILTER (WHERE d.status = 'failed'),
       count(*) FILTER (WHERE d.status = 'sent' AND d.opened_at IS NOT NULL),
       count(*) FILTER (WHERE d.status = 'sent' AND d.clicked_at IS NOT NULL),
       COALESCE(sum(c.orders), 0),
       COALESCE(sum(c.revenue), 0),
       count(b.delivery_id) FILTER (WHERE d.status = 'sent'),
       COALESCE(sum(b.spend) FILTER (WHERE d.status = 'sent'), 0),
       count(b.delivery_id) FILTER (WHERE d.status = 'held_out'),
       COALESCE(sum(b.spend) FILTER (WHERE d.status = 'held_out'), 0)
FROM campaigns_delivery d
LEFT JOIN members_member m ON m.id = d.member_id
LEFT JOIN conv c ON c.delivery_id = d.id
LEFT JOIN bought b ON b.delivery_id = d.id
WHERE d.broadcast_id = %(broadcast)s
GROUP BY d.broadcast_id, d.channel, m.home_store_id, m.guide_id, 7, 8
"""


CONVERSION_FACTS_SQL = """
INSERT INTO campaigns_conversionfact (broadcast_id, campaign_id, store_id, guide_id, day,
                                      touchpoint_id, orders, revenue)
SELECT broadcast_id, campaign_id, store_id, guide_id, (touched_at AT TIME ZONE %(tz)s)::date,
       touchpoint_id, count(*), sum(revenue)
FROM campaigns_conversion WHERE broadcast_id = %(broadcast)s
GROUP BY broadcast_id, campaign_id, store_id, guide_id, 5, touchpoint_id
"""


@dataclass
class FunnelStats:
    broadcasts: int = 0
    rows: int = 0


def _has_control(broadcast: Broadcast) -> bool:
    if broadcast.holdout_percent:
        return True
    step = broadcast.journey_step
    return bool(step is not None and step.campaign.holdout_percent)


@transaction.atomic
def funnel_rebuild(*, broadcast: Broadcast) -> int:
    """Rebuild one broadcast's facts; returns how many fact rows it has now. The
    broadcast row is locked so two rebuilds of it never interleave."""
    Broadcast.objects.select_for_update().filter(pk=broadcast.pk).first()
    step = broadcast.journey_step
    params: dict[str, Any] = {
        "broadcast": broadcast.pk,
        "campaign": step.campaign_id if step is not None else None,
        "step": step.pk if step is not None else None,
        "tz": settings.TIME_ZONE,
        "window": timedelta(days=AttributionSetting.current().window_days),
        "with_control": _has_control(broadcast),
    }
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM campaigns_funnelfact WHERE broadcast_id = %s", [broadcast.pk])
        cursor.execute(FACTS_SQL, params)
        facts = cursor.rowcount
        cursor.execute(
            "DELETE FROM campaigns_conversionfact WHERE broadcast_id = %s", [broadcast.pk]
        )
        cursor.execute(CONVERSION_FACTS_SQL, params)
        return facts


def funnel_refresh(
    *, now: datetime | None = None, lookback: timedelta | None = None
) -> FunnelStats:
    """Rebuild the facts of the broadcasts that may have changed: those planned within
    `lookback` (default: the attribution window plus two days) or still sending."""
    now = now or timezone.now()
    if lookback is None:
        lookback = timedelta(days=AttributionSetting.current().window_days) + ACTIVE_MARGIN
    broadcasts = (
        Broadcast.objects.filter(
            Q(planned_at__gte=now - lookback) | Q(status=BroadcastStatus.SENDING),
            planned_at__isnull=False,
        )
        .select_related("journey_step__campaign")
        .order_by("pk")
    )
    stats = FunnelStats()
    for broadcast in broadcasts:
        stats.rows += funnel_rebuild(broadcast=broadcast)
        stats.broadcasts += 1
    return stats


def funnel_refresh_nightly(*, now: datetime | None = None) -> FunnelStats:
    """Late refunds and clicks on older broadcasts: the refund lookback, once a night."""
    return funnel_refresh(now=now, lookback=REFUND_LOOKBACK)
