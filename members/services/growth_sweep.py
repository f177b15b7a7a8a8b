"""Growth value for orders that arrived in bulk (channel imports), set-based.

Orders recorded one by one earn their growth inline (`order_record`). Imported orders
arrive a million at a time, so a periodic task credits them afterwards in batches of
order ids: one entry and one lot per order (the same idempotency key as the inline path,
so an order never earns twice), balances raised once per account, and members whose
growth now reaches a higher tier upgraded in the same transaction. Bonus periods are not
applied to imported history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from members.models import EarnEvent, EarnRule

BATCH = 20_000


@dataclass
class SweepResult:
    orders: int = 0
    credited: int = 0
    upgraded: int = 0
    next_id: int = 0


SWEEP_SQL = """
WITH batch AS (
    SELECT o.id, o.member_id, o.paid_at,
           floor((o.amount - o.refunded_amount) * %(per_yuan)s + %(points)s)::bigint AS points
    FROM members_order o
    WHERE o.id >= %(low)s AND o.id < %(high)s AND o.status <> 'refunded'
      AND NOT EXISTS (
          SELECT 1 FROM members_ledgerentry e
          WHERE e.source = 'event:purchase' AND e.external_id = 'order:' || o.id
      )
), earning AS (
    SELECT b.*, a.id AS account_id, a.balance,
           a.balance + sum(b.points) OVER (PARTITION BY a.id ORDER BY b.id) AS running
    FROM batch b JOIN members_pointsaccount a ON a.member_id = b.member_id AND a.kind = 'growth'
    WHERE b.points > 0
), entries AS (
    INSERT INTO members_ledgerentry (account_id, kind, amount, balance_after, source,
        external_id, reason, created_at)
    SELECT account_id, 'earn', points, running, 'event:purchase', 'order:' || id,
           'purchase', paid_at
    FROM earning ORDER BY id
    ON CONFLICT (source, external_id) DO NOTHING
    RETURNING id, account_id, amount
), lots AS (
    INSERT INTO members_pointslot (account_id, entry_id, amount, remaining, expires_at)
    SELECT account_id, id, amount, amount, NULL FROM entries
), raised AS (
    UPDATE members_pointsaccount a SET balance = a.balance + t.total, updated_at = %(now)s
    FROM (SELECT account_id, sum(amount) AS total FROM entries GROUP BY account_id) t
    WHERE a.id = t.account_id
    RETURNING a.member_id
)
SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM entries),
       ARRAY(SELECT member_id FROM raised)
"""

UPGRADE_SQL = """
WITH growth AS (
    SELECT a.member_id, t.id AS tier_id, t.rank, t.threshold, t.valid_days,
           COALESCE(sum(e.amount) FILTER (
               WHERE e.created_at >= %(now)s - make_interval(days => t.window_days)
                 AND e.kind IN ('earn', 'reverse', 'adjust')), 0) AS counted
    FROM members_pointsaccount a
    CROSS JOIN members_tier t
    LEFT JOIN members_ledgerentry e ON e.account_id = a.id
    WHERE a.kind = 'growth' AND a.member_id = ANY(%(members)s)
    GROUP BY a.member_id, t.id
), best AS (
    SELECT DISTINCT ON (member_id) member_id, tier_id, rank, valid_days, counted
    FROM growth WHERE counted >= threshold ORDER BY member_id, rank DESC
), rising AS (
    SELECT b.*, mt.tier_id AS from_tier
    FROM best b
    JOIN members_membertier mt ON mt.member_id = b.member_id
    LEFT JOIN members_tier cur ON cur.id = mt.tier_id
    WHERE cur.id IS NULL OR cur.rank < b.rank
    FOR UPDATE OF mt
), moved AS (
    UPDATE members_membertier mt
    SET tier_id = r.tier_id, achieved_at = %(now)s,
        valid_until = %(now)s + make_interval(days => r.valid_days), grace_until = NULL
    FROM rising r WHERE mt.member_id = r.member_id
    RETURNING mt.member_id
)
INSERT INTO members_tierchange (member_id, kind, from_tier_id, to_tier_id, growth, reason,
    changed_at)
SELECT r.member_id, 'upgrade', r.from_tier, r.tier_id, r.counted, 'purchases', %(now)s
FROM rising r JOIN moved m ON m.member_id = r.member_id
"""


def growth_sweep_batch(*, low: int, high: int, now: datetime | None = None) -> SweepResult:
    """Credit growth for orders with low <= id < high that have none yet."""
    now = now or timezone.now()
    rule = EarnRule.objects.filter(event=EarnEvent.PURCHASE, active=True).first()
    if rule is None:
        return SweepResult(next_id=high)
    with transaction.atomic(), connection.cursor() as cursor:
        # Accounts first (a member's first growth opens one), then lock them in id order
        # so an order recorded meanwhile, or a refund, waits for this batch.
        cursor.execute(
            """
            INSERT INTO members_pointsaccount (member_id, kind, balance, updated_at)
            SELECT DISTINCT member_id, 'growth', 0, %s FROM members_order
            WHERE id >= %s AND id < %s
            ON CONFLICT (member_id, kind) DO NOTHING
            """,
            [now, low, high],
        )
        cursor.execute(
            """
            SELECT a.id FROM members_pointsaccount a
            WHERE a.kind = 'growth' AND a.member_id IN (
                SELECT member_id FROM members_order WHERE id >= %s AND id < %s)
            ORDER BY a.id FOR UPDATE
            """,
            [low, high],
        )
        cursor.execute(
            SWEEP_SQL,
            {
                "low": low,
                "high": high,
                "per_yuan": rule.points_per_yuan,
                "points": rule.points,
                "now": now,
            },
        )
        orders, credited, members = cursor.fetchone()
        upgraded = 0
        if members:
            members = list(set(members))
            # Tier state rows first: the upgrade statement cannot see rows it inserts.
            cursor.execute(
                "INSERT INTO members_membertier (member_id, manual_reason) "
                "SELECT unnest(%s::bigint[]), '' ON CONFLICT (member_id) DO NOTHING",
                [members],
            )
            cursor.execute(UPGRADE_SQL, {"members": members, "now": now})
            upgraded = cursor.rowcount
    return SweepResult(orders, credited, upgraded, high)


def growth_sweep_run(*, limit_batches: int = 50) -> SweepResult:
    """The periodic task's body: continue from the stored position, one batch per
    transaction (the position moves with the batch it covers). One runner at a time: a
    second one finds the advisory lock taken and returns at once."""
    from members.models import SweepPosition

    total = SweepResult()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext('members.purchase-growth'))")
        (locked,) = cursor.fetchone()
    if not locked:
        return total
    try:
        SweepPosition.objects.get_or_create(name="purchase-growth")
        with connection.cursor() as cursor:
            cursor.execute("SELECT max(id) FROM members_order")
            (top,) = cursor.fetchone()
        for _ in range(limit_batches):
            with transaction.atomic():
                position = SweepPosition.objects.select_for_update().get(name="purchase-growth")
                low = position.last_id + 1
                if top is None or low > top:
                    break
                result = growth_sweep_batch(low=low, high=low + BATCH)
                position.last_id = result.next_id - 1
                position.save(update_fields=["last_id", "updated_at"])
            total.orders += result.orders
            total.credited += result.credited
            total.upgraded += result.upgraded
            total.next_id = result.next_id
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext('members.purchase-growth'))")
    return total
