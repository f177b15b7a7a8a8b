"""Follow-up tasks for store guides, generated set-wise from the pool.

Each sweep is one `INSERT … SELECT … ON CONFLICT DO NOTHING` (a few for repurchase), so a
pool of a million members costs a handful of statements, never a loop over members. Every
generated task carries a `source_key` naming what made it (the assignment, the birthday
and year, the last order, the class change); the partial unique index on that key makes
a second run, a retried task or two overlapping runs create nothing new.

Only members still in the pool (not merged) whose guide is an active staff user get
tasks, and the task goes to the member's current guide. Generated tasks have no title
(pages show the kind's label) and keep their figures in `facts`, dates as ISO strings,
so each page can phrase them in its reader's language.

Dates are the brand's local dates (settings.TIME_ZONE): a purchase at 23:30 in Shanghai
belongs to that Shanghai day, whatever the database session's time zone is.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from members.models.guides import NEW_CUSTOMER_REASONS, RepurchaseCycle, TaskKind

# A repeat customer whose time since the last purchase reaches this many times their
# usual interval between purchases is about to churn: their guide gets a churn warning.
CHURN_FACTOR = 2
MIN_INTERVAL_DAYS = 7

# Welcomed: customers new to their guide (`NEW_CUSTOMER_REASONS`); the new guide of a
# transferred customer reads the history instead.
WELCOME_REASONS = NEW_CUSTOMER_REASONS
WELCOME_WITHIN = timedelta(hours=24)

# Birthdays are prepared this many days ahead (today included: 0 … 3).
BIRTHDAY_LEAD_DAYS = 3
# Repurchase reminders come this many days before they fall due, and reminders that fell
# due up to CATCH_UP_DAYS ago are still created (the sweep did not run for a few days).
REPURCHASE_LEAD_DAYS = 3
CATCH_UP_DAYS = 7
# An RFM drop is still reported this many days after the nightly review recorded it.
RFM_DROP_DAYS = 2

_INSERT = """
INSERT INTO members_followuptask
    (member_id, guide_id, kind, title, detail, facts, due_on, status, outcome, outcome_note,
     source_key, created_at)
{select}
ON CONFLICT (source_key) WHERE source_key <> '' DO NOTHING
"""

# Members who may get tasks: in the pool, with an active guide (joined as `g`).
_ELIGIBLE = """
    JOIN org_staff g ON g.id = m.guide_id AND g.is_active
"""

_WELCOME_SQL = _INSERT.format(
    select=f"""
SELECT m.id, m.guide_id, 'welcome', '', '', jsonb_build_object('assigned_at', a.created_at),
       ((a.created_at + interval '24 hours') AT TIME ZONE %(tz)s)::date, 'open', '', '',
       'welcome:' || a.id, %(now)s
FROM members_guideassignment a
JOIN members_member m ON m.id = a.member_id AND m.guide_id = a.to_guide_id
{_ELIGIBLE}
WHERE a.created_at > %(since)s AND a.created_at <= %(now)s
  AND a.reason = ANY(%(reasons)s)
  AND m.merged_into_id IS NULL
"""
)

_BIRTHDAY_SQL = _INSERT.format(
    select=f"""
SELECT m.id, m.guide_id, 'birthday', '', '', jsonb_build_object('birthday', m.birthday),
       w.due, 'open', '', '',
       'birthday:' || extract(year FROM w.due)::int || ':' || m.id, %(now)s
FROM members_member m
{_ELIGIBLE}
JOIN unnest(%(months)s::int[], %(days)s::int[], %(dues)s::date[]) AS w(month, day, due)
  ON extract(month FROM m.birthday) = w.month AND extract(day FROM m.birthday) = w.day
WHERE m.birthday IS NOT NULL AND m.merged_into_id IS NULL
"""
)

# The shortest cycle among the lines of the member's last order; a SKU's cycle wins over
# its category's. `last_order_at` bounds skip members whose reminder cannot fall in the
# window whatever the cycle, before any order is looked up.
_REPURCHASE_PRODUCT_SQL = _INSERT.format(
    select=f"""
SELECT m.id, m.guide_id, 'repurchase', '', '',
       jsonb_build_object('last_order_at', c.last_day, 'days', c.days, 'basis', 'product',
                          'product', c.product_name),
       c.last_day + c.days, 'open', '', '',
       'repurchase:' || m.id || ':' || to_char(c.last_day, 'YYYYMMDD'), %(now)s
FROM members_member m
{_ELIGIBLE}
CROSS JOIN LATERAL (
    SELECT (m.last_order_at AT TIME ZONE %(tz)s)::date AS last_day,
           COALESCE(s.days, k.days) AS days, l.product_name
    FROM members_order o
    JOIN members_orderline l ON l.order_id = o.id
    LEFT JOIN members_repurchasecycle s ON s.sku <> '' AND s.sku = l.sku
    LEFT JOIN members_repurchasecycle k ON k.category <> '' AND k.category = l.category
    WHERE o.member_id = m.id AND o.paid_at = m.last_order_at AND o.status <> 'refunded'
      AND COALESCE(s.days, k.days) IS NOT NULL
    ORDER BY COALESCE(s.days, k.days), l.id
    LIMIT 1
) c
WHERE m.merged_into_id IS NULL
  AND m.last_order_at >= %(oldest)s AND m.last_order_at < %(newest)s
  AND c.last_day + c.days BETWEEN %(low)s AND %(high)s
"""
)

# The member's usual interval between purchases, in whole days, at least MIN_INTERVAL_DAYS:
# two purchases a day apart are not a rhythm to remind anyone of.
_INTERVAL_LATERAL = """
CROSS JOIN LATERAL (
    SELECT (m.last_order_at AT TIME ZONE %(tz)s)::date AS last_day,
           GREATEST(%(min_interval)s, round(extract(epoch FROM m.last_order_at - m.first_order_at)
                             / 86400 / (m.order_count - 1)))::int AS days
) t
"""

_REPURCHASE_INTERVAL_SQL = _INSERT.format(
    select=f"""
SELECT m.id, m.guide_id, 'repurchase', '', '',
       jsonb_build_object('last_order_at', t.last_day, 'days', t.days, 'basis', 'interval',
                          'product', ''),
       t.last_day + t.days, 'open', '', '',
       'repurchase:' || m.id || ':' || to_char(t.last_day, 'YYYYMMDD'), %(now)s
FROM members_member m
{_ELIGIBLE}
{_INTERVAL_LATERAL}
WHERE m.merged_into_id IS NULL AND m.order_count >= 2
  AND m.first_order_at IS NOT NULL AND m.last_order_at IS NOT NULL
  AND t.last_day + t.days BETWEEN %(low)s AND %(high)s
  AND NOT EXISTS (
      SELECT 1
      FROM members_order o
      JOIN members_orderline l ON l.order_id = o.id
      JOIN members_repurchasecycle r
        ON (r.sku <> '' AND r.sku = l.sku) OR (r.category <> '' AND r.category = l.category)
      WHERE o.member_id = m.id AND o.paid_at = m.last_order_at AND o.status <> 'refunded'
  )
"""
)

_CHURN_SQL = _INSERT.format(
    select=f"""
SELECT m.id, m.guide_id, 'churn', '', '',
       jsonb_build_object('last_order_at', t.last_day, 'days', t.days,
                          'since', %(today)s::date - t.last_day),
       %(today)s::date, 'open', '', '',
       'churn:' || m.id || ':' || to_char(t.last_day, 'YYYYMMDD'), %(now)s
FROM members_member m
{_ELIGIBLE}
{_INTERVAL_LATERAL}
WHERE m.merged_into_id IS NULL AND m.order_count >= 2
  AND m.first_order_at IS NOT NULL AND m.last_order_at IS NOT NULL
  AND t.last_day + %(factor)s * t.days BETWEEN %(low)s AND %(today)s::date
"""
)

_RFM_DROP_SQL = _INSERT.format(
    select=f"""
SELECT m.id, m.guide_id, 'churn', '', '',
       jsonb_build_object('from', r.previous_class, 'to', r.rfm_class),
       %(today)s::date, 'open', '', '',
       'rfmdrop:' || m.id || ':' || to_char(r.class_since, 'YYYYMMDD'), %(now)s
FROM members_memberrfm r
JOIN members_member m ON m.id = r.member_id
{_ELIGIBLE}
WHERE r.class_since BETWEEN %(low)s AND %(today)s
  AND r.previous_class <> '' AND r.rfm_class <> ''
  AND length(r.rfm_class) - length(replace(r.rfm_class, 'H', ''))
      < length(r.previous_class) - length(replace(r.previous_class, 'H', ''))
  AND m.merged_into_id IS NULL
"""
)


def _execute(sql: str, params: dict[str, Any]) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def followups_welcome(*, now: datetime | None = None) -> int:
    """Create a welcome task for each customer a guide gained in the last 24 hours (QR
    code, store purchase, manager or round-robin), due a day after the assignment: the
    first contact is what turns a scan into a relationship. An import brings a brand's
    existing customers with their guides, not new ones: no welcome for those.

    Assignments whose guide is no longer the member's guide are skipped (the customer
    moved on before the task was made). Runs every few minutes; the 24-hour look-back
    overlaps the runs, and `welcome:<assignment id>` keeps it at one task each.
    """
    now = now or timezone.now()
    return _execute(
        _WELCOME_SQL,
        {
            "now": now,
            "since": now - WELCOME_WITHIN,
            "reasons": [str(reason) for reason in WELCOME_REASONS],
            "tz": timezone.get_current_timezone_name(),
        },
    )


def followups_daily(*, today: date | None = None) -> dict[str, int]:
    """The morning sweep: birthdays, repurchase reminders, churn warnings and RFM drops.

    Returns how many tasks each sweep created: "birthday", "repurchase", "churn", and
    "rfm_drop" (RFM drops are churn warnings, kind "churn", counted apart). Each sweep
    looks a few days back, so a missed morning is caught up the next, and a second run
    creates nothing new.
    """
    today = today or timezone.localdate()
    now = timezone.now()
    return {
        TaskKind.BIRTHDAY.value: _birthdays(today=today, now=now),
        TaskKind.REPURCHASE.value: _repurchase(today=today, now=now),
        TaskKind.CHURN.value: _churn(today=today, now=now),
        "rfm_drop": _rfm_drops(today=today, now=now),
    }


def _birthdays(*, today: date, now: datetime) -> int:
    """Birthdays from today to BIRTHDAY_LEAD_DAYS ahead, due on the day itself, so the
    guide can prepare a greeting or a gift. Members born on 29 February have theirs on
    the 28th in other years; a window crossing the new year uses next year's date (and
    next year in the key: once per member and year)."""
    months: list[int] = []
    days: list[int] = []
    dues: list[date] = []
    for offset in range(BIRTHDAY_LEAD_DAYS + 1):
        day = today + timedelta(days=offset)
        months.append(day.month)
        days.append(day.day)
        dues.append(day)
        if (day.month, day.day) == (2, 28) and not _is_leap(day.year):
            months.append(2)
            days.append(29)
            dues.append(day)
    return _execute(_BIRTHDAY_SQL, {"months": months, "days": days, "dues": dues, "now": now})


def _repurchase(*, today: date, now: datetime) -> int:
    """Remind the guide when the customer's last purchase is about to run out.

    The product's cycle comes first: the shortest among the lines of the last order, a
    SKU's cycle before its category's. Only when no line of that order has a cycle does a
    repeat customer's own interval (first to last purchase over the orders between) stand
    in. Reminders are made REPURCHASE_LEAD_DAYS before they fall due, and up to
    CATCH_UP_DAYS after; `repurchase:<member>:<day of last order>` keeps one per purchase,
    whichever basis made it (product cycles are inserted first).
    """
    low = today - timedelta(days=CATCH_UP_DAYS)
    high = today + timedelta(days=REPURCHASE_LEAD_DAYS)
    params: dict[str, Any] = {
        "low": low,
        "high": high,
        "now": now,
        "tz": timezone.get_current_timezone_name(),
    }
    created = 0
    bounds = RepurchaseCycle.objects.aggregate(shortest=Min("days"), longest=Max("days"))
    if bounds["longest"] is not None:
        created += _execute(
            _REPURCHASE_PRODUCT_SQL,
            {
                **params,
                "oldest": _local_midnight(low - timedelta(days=bounds["longest"])),
                "newest": _local_midnight(high - timedelta(days=bounds["shortest"] - 1)),
            },
        )
    created += _execute(_REPURCHASE_INTERVAL_SQL, {**params, "min_interval": MIN_INTERVAL_DAYS})
    return created


def _churn(*, today: date, now: datetime) -> int:
    """Warn the guide when a repeat customer has stayed away CHURN_FACTOR times their
    usual interval. Only warnings that came due in the last CATCH_UP_DAYS days are made,
    so deploying this does not flood guides with every long-gone customer; one per last
    purchase (`churn:<member>:<day of last order>`)."""
    return _execute(
        _CHURN_SQL,
        {
            "today": today,
            "low": today - timedelta(days=CATCH_UP_DAYS),
            "factor": CHURN_FACTOR,
            "min_interval": MIN_INTERVAL_DAYS,
            "now": now,
            "tz": timezone.get_current_timezone_name(),
        },
    )


def _rfm_drops(*, today: date, now: datetime) -> int:
    """Warn the guide when the nightly RFM review moved a customer to a class with fewer
    high scores (e.g. HHH → LHH): value is slipping before the customer is gone. Class
    rises and first classes make nothing."""
    return _execute(
        _RFM_DROP_SQL,
        {"today": today, "low": today - timedelta(days=RFM_DROP_DAYS), "now": now},
    )
