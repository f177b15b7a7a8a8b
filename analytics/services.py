"""Keeping the daily aggregates up to date, set-based.

- `aggregates_refresh(now)` (every 10 minutes) reads, per source, the rows recorded since
  its cursor and up to `now - LATE_MARGIN` (a transaction that began before that moment
  and commits within the margin is still read next time), adds their counts with
  `INSERT … ON CONFLICT DO UPDATE SET x = x + EXCLUDED.x`, and moves the cursor, all in
  one transaction that holds the cursor row `FOR UPDATE`: two runs never count a row
  twice, and a failed run counts nothing.
  Sources: members (created_at) → pool new contacts; lifecycle changes (changed_at) →
  flows and pool new members; the activity-points ledger (created_at) → points issued,
  redeemed, expired, adjusted; orders (created_at, bucketed by the day they were paid)
  → sales and cohorts. Orders carry no refund time, so after reading new orders the
  refunds of the last `REFUND_DAYS` days (by payment) are recounted and set, not added.
- `snapshots_take(day)` (hourly; the day's last taking stays) records the distribution
  over stages, tiers and RFM classes, the outstanding points, and the RFM class
  movement of the day, replacing what an earlier taking of that day recorded.
- `aggregates_rebuild()` builds everything from scratch (`manage.py analytics_rebuild`).

Members, changes and points count under the member's home store at the time they are
read; orders too (the store whose customers they are, as `Order.scope` says).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from analytics.models import Cursor

LATE_MARGIN = timedelta(minutes=5)
# Ids are taken at insert, right after created_at is stamped: any row whose id is below
# the first one stamped within this slack of the cursor was recorded before it.
ID_SLACK = timedelta(hours=1)
REFUND_DAYS = 90
EPOCH = datetime(2000, 1, 1, tzinfo=timezone.get_fixed_timezone(0))


@dataclass(frozen=True)
class Source:
    name: str
    table: str
    stamp: str
    statements: tuple[str, ...]


def _local_day(column: str) -> str:
    return f"({column} AT TIME ZONE %(tz)s)::date"


MEMBERS_SQL = f"""
INSERT INTO analytics_poolday (day, store_id, channel, new_contacts, new_members)
SELECT {_local_day("m.created_at")}, m.home_store_id, m.source_channel, count(*), 0
FROM members_member m
WHERE m.id > %(floor)s AND m.created_at >= %(start)s AND m.created_at < %(end)s
GROUP BY 1, 2, 3
ON CONFLICT (day, store_id, channel) DO UPDATE
    SET new_contacts = analytics_poolday.new_contacts + EXCLUDED.new_contacts
"""

FLOWS_SQL = f"""
INSERT INTO analytics_lifecycleflowday (day, store_id, from_stage, to_stage, members)
SELECT {_local_day("c.changed_at")}, m.home_store_id, c.from_stage, c.to_stage, count(*)
FROM members_lifecyclechange c JOIN members_member m ON m.id = c.member_id
WHERE c.id > %(floor)s AND c.changed_at >= %(start)s AND c.changed_at < %(end)s
GROUP BY 1, 2, 3, 4
ON CONFLICT (day, store_id, from_stage, to_stage) DO UPDATE
    SET members = analytics_lifecycleflowday.members + EXCLUDED.members
"""

JOINED_SQL = f"""
INSERT INTO analytics_poolday (day, store_id, channel, new_contacts, new_members)
SELECT {_local_day("c.changed_at")}, m.home_store_id, m.source_channel, 0, count(*)
FROM members_lifecyclechange c JOIN members_member m ON m.id = c.member_id
WHERE c.id > %(floor)s AND c.changed_at >= %(start)s AND c.changed_at < %(end)s
  AND c.to_stage = 'member'
GROUP BY 1, 2, 3
ON CONFLICT (day, store_id, channel) DO UPDATE
    SET new_members = analytics_poolday.new_members + EXCLUDED.new_members
"""

LEDGER_SQL = f"""
INSERT INTO analytics_pointsday (day, store_id, issued, redeemed, expired, adjusted)
SELECT {_local_day("e.created_at")}, m.home_store_id,
       COALESCE(sum(e.amount) FILTER (WHERE e.kind = 'earn'), 0),
       COALESCE(-sum(e.amount) FILTER (WHERE e.kind = 'redeem'), 0),
       COALESCE(-sum(e.amount) FILTER (WHERE e.kind = 'expire'), 0),
       COALESCE(sum(e.amount) FILTER (WHERE e.kind IN ('adjust', 'reverse')), 0)
FROM members_ledgerentry e
JOIN members_pointsaccount a ON a.id = e.account_id
JOIN members_member m ON m.id = a.member_id
WHERE e.id > %(floor)s AND e.created_at >= %(start)s AND e.created_at < %(end)s
  AND a.kind = 'activity'
GROUP BY 1, 2
ON CONFLICT (day, store_id) DO UPDATE
    SET issued = analytics_pointsday.issued + EXCLUDED.issued,
        redeemed = analytics_pointsday.redeemed + EXCLUDED.redeemed,
        expired = analytics_pointsday.expired + EXCLUDED.expired,
        adjusted = analytics_pointsday.adjusted + EXCLUDED.adjusted
"""

# The orders read this time, with what sales and cohorts group them by.
_NEW_ORDERS = """
WITH o AS MATERIALIZED (
    SELECT o.id, o.member_id, o.channel, o.amount, o.refunded_amount, o.paid_at,
           m.home_store_id AS store_id, m.source_channel,
           date_trunc('month', o.paid_at AT TIME ZONE %(tz)s) AS paid_month,
           date_trunc('month', m.created_at AT TIME ZONE %(tz)s) AS cohort
    FROM members_order o JOIN members_member m ON m.id = o.member_id
    WHERE o.id > %(floor)s AND o.created_at >= %(start)s AND o.created_at < %(end)s
)
"""

SALES_SQL = (
    _NEW_ORDERS
    + f"""
INSERT INTO analytics_salesday (day, store_id, channel, orders, revenue, refunded, first_orders)
SELECT {_local_day("o.paid_at")}, o.store_id, o.channel, count(*), sum(o.amount),
       sum(o.refunded_amount),
       count(*) FILTER (WHERE NOT EXISTS (
           SELECT 1 FROM members_order p
           WHERE p.member_id = o.member_id AND p.paid_at <= o.paid_at
             AND (p.paid_at < o.paid_at OR p.id < o.id)))
FROM o
GROUP BY 1, 2, 3
ON CONFLICT (day, store_id, channel) DO UPDATE
    SET orders = analytics_salesday.orders + EXCLUDED.orders,
        revenue = analytics_salesday.revenue + EXCLUDED.revenue,
        refunded = analytics_salesday.refunded + EXCLUDED.refunded,
        first_orders = analytics_salesday.first_orders + EXCLUDED.first_orders
"""
)

# Months since acquisition: calendar months between the member's creation and the
# payment. Orders paid before the member was created (imported history) are left out.
_MONTHS_AFTER = (
    "((extract(year FROM o.paid_month) - extract(year FROM o.cohort)) * 12"
    " + extract(month FROM o.paid_month) - extract(month FROM o.cohort))::int"
)

COHORT_SQL = (
    _NEW_ORDERS
    + f"""
INSERT INTO analytics_cohortmonth (cohort, channel, store_id, months_after, buyers, revenue,
                                   refunded)
SELECT o.cohort::date, o.source_channel, o.store_id, {_MONTHS_AFTER},
       -- A buyer counts once a month: not when an order of theirs in that month was read
       -- before (order_member_paid_idx), and once however many orders this read has.
       count(DISTINCT o.member_id) FILTER (WHERE NOT EXISTS (
           SELECT 1 FROM members_order p
           WHERE p.member_id = o.member_id
             AND p.paid_at >= (o.paid_month AT TIME ZONE %(tz)s)
             AND p.paid_at < ((o.paid_month + interval '1 month') AT TIME ZONE %(tz)s)
             AND p.created_at < %(start)s)),
       sum(o.amount), sum(o.refunded_amount)
FROM o
WHERE o.paid_month >= o.cohort
GROUP BY 1, 2, 3, 4
ON CONFLICT (cohort, channel, store_id, months_after) DO UPDATE
    SET buyers = analytics_cohortmonth.buyers + EXCLUDED.buyers,
        revenue = analytics_cohortmonth.revenue + EXCLUDED.revenue,
        refunded = analytics_cohortmonth.refunded + EXCLUDED.refunded
"""
)

# Refunds carry no time of their own: recount those of orders paid since %(since)s (and
# already read) and set them. Needs no lock of its own: it runs under the orders cursor.
REFUNDS_SQL = (
    """
UPDATE analytics_salesday SET refunded = 0 WHERE day >= %(since_day)s AND refunded <> 0;
UPDATE analytics_cohortmonth SET refunded = 0
WHERE cohort + make_interval(months => months_after) >= %(since_month)s AND refunded <> 0;
WITH o AS MATERIALIZED (
    SELECT o.channel, o.refunded_amount, o.paid_at, m.home_store_id AS store_id,
           m.source_channel,
           date_trunc('month', o.paid_at AT TIME ZONE %(tz)s) AS paid_month,
           date_trunc('month', m.created_at AT TIME ZONE %(tz)s) AS cohort
    FROM members_order o JOIN members_member m ON m.id = o.member_id
    WHERE o.paid_at >= %(since_month_start)s AND o.refunded_amount > 0
      AND o.created_at < %(end)s
), sales AS (
    INSERT INTO analytics_salesday (day, store_id, channel, orders, revenue, refunded,
                                    first_orders)
    SELECT """
    + _local_day("o.paid_at")
    + """, o.store_id, o.channel, 0, 0, sum(o.refunded_amount), 0
    FROM o WHERE o.paid_at >= %(since_start)s
    GROUP BY 1, 2, 3
    ON CONFLICT (day, store_id, channel) DO UPDATE SET refunded = EXCLUDED.refunded
)
INSERT INTO analytics_cohortmonth (cohort, channel, store_id, months_after, buyers, revenue,
                                   refunded)
SELECT o.cohort::date, o.source_channel, o.store_id, """
    + _MONTHS_AFTER
    + """, 0, 0, sum(o.refunded_amount)
FROM o WHERE o.paid_month >= o.cohort
GROUP BY 1, 2, 3, 4
ON CONFLICT (cohort, channel, store_id, months_after) DO UPDATE
    SET refunded = EXCLUDED.refunded
"""
)

SOURCES = (
    Source("members", "members_member", "created_at", (MEMBERS_SQL,)),
    Source("lifecycle", "members_lifecyclechange", "changed_at", (FLOWS_SQL, JOINED_SQL)),
    Source("ledger", "members_ledgerentry", "created_at", (LEDGER_SQL,)),
    Source("orders", "members_order", "created_at", (SALES_SQL, COHORT_SQL)),
)


def _tz() -> str:
    return timezone.get_current_timezone_name()


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


def _execute_all(cursor: Any, script: str, params: dict[str, Any]) -> None:
    """Run the statements of `script` one by one (server-side binding takes one only)."""
    for statement in script.split(";\n"):
        if statement.strip():
            cursor.execute(statement, params)


def _lock_cursor(cursor: Any, name: str) -> tuple[datetime, int]:
    cursor.execute(
        "INSERT INTO analytics_cursor (name, read_until, id_floor) VALUES (%s, %s, 0) "
        "ON CONFLICT (name) DO NOTHING",
        [name, EPOCH],
    )
    cursor.execute(
        "SELECT read_until, id_floor FROM analytics_cursor WHERE name = %s FOR UPDATE", [name]
    )
    read_until, floor = cursor.fetchone()
    return read_until, floor


def _new_floor(cursor: Any, source: Source, floor: int, until: datetime) -> int:
    """The highest id below which every row was stamped before `until - ID_SLACK`: found
    by walking the primary key from the old floor, so the tables need no index on their
    time columns."""
    cursor.execute(
        f"SELECT min(id) FROM {source.table} WHERE id > %s AND {source.stamp} >= %s",  # noqa: S608
        [floor, until - ID_SLACK],
    )
    first_recent = cursor.fetchone()[0]
    if first_recent is not None:
        return max(floor, int(first_recent) - 1)
    cursor.execute(f"SELECT max(id) FROM {source.table} WHERE id > %s", [floor])  # noqa: S608
    last = cursor.fetchone()[0]
    return floor if last is None else int(last)


def _read_source(cursor: Any, source: Source, until: datetime) -> bool:
    start, floor = _lock_cursor(cursor, source.name)
    if until <= start:
        return False
    params = {"tz": _tz(), "start": start, "end": until, "floor": floor}
    for statement in source.statements:
        cursor.execute(statement, params)
    cursor.execute(
        "UPDATE analytics_cursor SET read_until = %s, id_floor = %s WHERE name = %s",
        [until, _new_floor(cursor, source, floor, until), source.name],
    )
    return True


def _recount_refunds(cursor: Any, *, now: datetime, read_until: datetime) -> None:
    since_day = timezone.localdate(now) - timedelta(days=REFUND_DAYS)
    since_month = since_day.replace(day=1)
    _execute_all(
        cursor,
        REFUNDS_SQL,
        {
            "tz": _tz(),
            "since_day": since_day,
            "since_start": _midnight(since_day),
            "since_month": since_month,
            "since_month_start": _midnight(since_month),
            "end": read_until,
        },
    )


def aggregates_refresh(*, now: datetime | None = None) -> list[str]:
    """Add what was recorded since the last run; the names of the sources that moved."""
    now = now or timezone.now()
    until = now - LATE_MARGIN
    moved = []
    for source in SOURCES:
        with transaction.atomic(), connection.cursor() as cursor:
            if _read_source(cursor, source, until):
                moved.append(source.name)
            if source.name == "orders":
                read_until, _floor = _lock_cursor(cursor, "orders")
                _recount_refunds(cursor, now=now, read_until=read_until)
    return moved


SNAPSHOT_SQL = """
DELETE FROM analytics_snapshotday WHERE day = %(day)s;
DELETE FROM analytics_rfmmoveday WHERE day = %(day)s;
UPDATE analytics_pointsday SET outstanding = NULL WHERE day = %(day)s;
WITH m AS MATERIALIZED (
    SELECT m.id, m.home_store_id, m.lifecycle_stage,
           CASE WHEN t.manual_tier_id IS NOT NULL AND t.manual_until > %(now)s
                THEN t.manual_tier_id ELSE t.tier_id END AS tier_id,
           EXISTS (SELECT 1 FROM members_membertag mt WHERE mt.member_id = m.id) AS tagged
    FROM members_member m LEFT JOIN members_membertier t ON t.member_id = m.id
    WHERE m.merged_into_id IS NULL
)
INSERT INTO analytics_snapshotday (day, store_id, dimension, value, members)
SELECT %(day)s, home_store_id, 'stage', lifecycle_stage, count(*) FROM m GROUP BY 2, 4
UNION ALL
SELECT %(day)s, home_store_id, 'tier', COALESCE(tier_id::text, ''), count(*) FROM m GROUP BY 2, 4
UNION ALL
SELECT %(day)s, home_store_id, 'tagged', CASE WHEN tagged THEN 'yes' ELSE 'no' END, count(*)
FROM m GROUP BY 2, 4
UNION ALL
SELECT %(day)s, m.home_store_id, 'rfm', r.rfm_class, count(*)
FROM members_memberrfm r JOIN m ON m.id = r.member_id GROUP BY 2, 4;
INSERT INTO analytics_rfmmoveday (day, store_id, from_class, to_class, members)
SELECT %(day)s, m.home_store_id, r.previous_class, r.rfm_class, count(*)
FROM members_memberrfm r JOIN members_member m ON m.id = r.member_id
WHERE r.class_since = %(day)s AND m.merged_into_id IS NULL
GROUP BY 2, 3, 4;
INSERT INTO analytics_pointsday (day, store_id, outstanding)
SELECT %(day)s, m.home_store_id, sum(a.balance)
FROM members_pointsaccount a JOIN members_member m ON m.id = a.member_id
WHERE a.kind = 'activity'
GROUP BY 2
ON CONFLICT (day, store_id) DO UPDATE SET outstanding = EXCLUDED.outstanding;
"""


def snapshots_take(*, day: date | None = None, now: datetime | None = None) -> None:
    """Record today's (or `day`'s) distributions from the pool as it stands now."""
    now = now or timezone.now()
    day = day or timezone.localdate(now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('analytics-snapshots'))")
        _execute_all(cursor, SNAPSHOT_SQL, {"day": day, "now": now})


AGGREGATE_TABLES = (
    "analytics_poolday",
    "analytics_lifecycleflowday",
    "analytics_salesday",
    "analytics_cohortmonth",
)


@transaction.atomic
def aggregates_rebuild(*, now: datetime | None = None) -> None:
    """Every aggregate from the raw tables. The day-by-day history of snapshots cannot
    be recovered (only the pool as it stands now), so past snapshots stay and today's
    is taken again; outstanding points of past days are kept too."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        for source in SOURCES:
            _lock_cursor(cursor, source.name)
        for table in AGGREGATE_TABLES:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608
        # Past outstanding balances come from snapshots and cannot be recounted: keep them.
        cursor.execute("DELETE FROM analytics_pointsday WHERE outstanding IS NULL")
        cursor.execute(
            "UPDATE analytics_pointsday SET issued = 0, redeemed = 0, expired = 0, adjusted = 0"
        )
        cursor.execute(
            "UPDATE analytics_cursor SET read_until = %s, id_floor = 0 WHERE name = ANY(%s)",
            [EPOCH, [source.name for source in SOURCES]],
        )
    aggregates_refresh(now=now)
    snapshots_take(now=now)


def cursor_positions() -> dict[str, datetime]:
    return dict(Cursor.objects.values_list("name", "read_until"))
