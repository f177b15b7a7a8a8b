"""Crediting orders to messages, set-based and incremental (beat, every 15 minutes).

An order converts the last message sent to its member before it was paid, within the
window (7 days unless head office changes it). Orders are read by when they were
recorded, so imported history is attributed too; a fully refunded order converts
nothing, and a partial refund lowers the revenue credited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import AttributionSetting

# Refunds arrive after the sale: conversions this recent are checked again on each run.
REFUND_LOOKBACK = timedelta(days=90)

ATTRIBUTE_SQL = """
INSERT INTO campaigns_conversion (order_id, member_id, delivery_id, broadcast_id, campaign_id,
                                  channel, store_id, guide_id, touchpoint_id, revenue,
                                  touched_at, converted_at)
SELECT DISTINCT ON (o.id)
       o.id, o.member_id, d.id, d.broadcast_id, s.campaign_id, d.channel, o.store_id,
       o.guide_id, won.touchpoint_id, o.amount - o.refunded_amount, d.sent_at, o.paid_at
FROM members_order o
JOIN campaigns_delivery d
  ON d.member_id = o.member_id AND d.status = 'sent'
 AND d.sent_at <= o.paid_at AND d.sent_at > o.paid_at - %(window)s
JOIN campaigns_broadcast b ON b.id = d.broadcast_id
LEFT JOIN campaigns_journeystep s ON s.id = b.journey_step_id
LEFT JOIN LATERAL (
    SELECT e.touchpoint_id FROM touchpoints_behaviourevent e
    WHERE e.member_id = o.member_id AND e.touchpoint_id IS NOT NULL
    ORDER BY e.occurred_at, e.id LIMIT 1
) won ON true
WHERE o.created_at > %(since)s AND o.created_at <= %(until)s
  AND o.member_id IS NOT NULL AND o.amount > o.refunded_amount
ORDER BY o.id, d.sent_at DESC, d.id DESC
ON CONFLICT (order_id) DO NOTHING
"""

REFUNDS_SQL = """
UPDATE campaigns_conversion c SET revenue = o.amount - o.refunded_amount
FROM members_order o
WHERE o.id = c.order_id AND c.converted_at > %(since)s
  AND c.revenue <> o.amount - o.refunded_amount
"""

FULL_REFUNDS_SQL = (
    "DELETE FROM campaigns_conversion WHERE revenue <= 0 AND converted_at > %(since)s"
)


@dataclass
class AttributionStats:
    converted: int = 0
    revised: int = 0
    withdrawn: int = 0


@transaction.atomic
def attribution_refresh(*, now: datetime | None = None) -> AttributionStats:
    """Attribute the orders recorded since the last run; revise recent refunds. Safe to
    run twice, or twice at once (the setting row is locked; an order converts once)."""
    now = now or timezone.now()
    setting = AttributionSetting.current()
    setting = AttributionSetting.objects.select_for_update().get(pk=setting.pk)
    since = setting.read_until or datetime(2000, 1, 1, tzinfo=now.tzinfo)
    params: dict[str, Any] = {
        "window": timedelta(days=setting.window_days),
        "since": since,
        "until": now,
    }
    stats = AttributionStats()
    with connection.cursor() as cursor:
        cursor.execute(ATTRIBUTE_SQL, params)
        stats.converted = cursor.rowcount
        lookback = {"since": now - REFUND_LOOKBACK}
        cursor.execute(REFUNDS_SQL, lookback)
        stats.revised = cursor.rowcount
        cursor.execute(FULL_REFUNDS_SQL, lookback)
        stats.withdrawn = cursor.rowcount
    setting.read_until = now
    setting.save(update_fields=["read_until"])
    return stats
