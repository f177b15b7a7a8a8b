"""RFM: keep each buyer's facts current, compute cut points, score and class on read.

New orders call `rfm_mark_new_orders` in their own transaction and their members' facts
grow by a delta; refunds and merges call `rfm_mark_dirty` and those members are recounted
from their orders. `rfm_recount` (every few minutes, and after order imports) does both.
`rfm_nightly` moves the window forward, refreshes quintile cut points and records class
movements. `rfm_full_recompute` rebuilds every member's facts from the orders (after the
window length changes). All of them hold one advisory lock, so two never interleave;
queueing takes no lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from members.models.rfm import RfmClass, RfmMethod, RfmSettings
from members.services.bulk import bigint_array

RFM_LOCK = 7_305_001  # pg advisory lock key for RFM writers
RECOUNT_BATCH = 100_000


def rfm_mark_dirty(member_ids: Any) -> None:
    """Queue members for a recount (inside the caller's transaction)."""
    _queue("members_rfmdirty", "member_id", member_ids)


def rfm_mark_new_orders(order_ids: Any) -> None:
    """Queue new orders: their members' facts grow by a delta at the next recount."""
    _queue("members_rfmneworder", "order_id", order_ids)


def _queue(table: str, column: str, values: Any) -> None:
    ids = sorted({int(i) for i in values if i is not None})
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({column}) SELECT unnest(%s::bigint[]) "
                "ON CONFLICT DO NOTHING",
                [bigint_array(ids)],
            )


def _lock(cursor: Any) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RFM_LOCK])


def _window_start(settings: RfmSettings, now: datetime) -> datetime:
    if settings.window_start is None:
        settings.window_start = now - timedelta(days=settings.window_days)
        settings.save(update_fields=["window_start"])
    return settings.window_start


RECOUNT_SQL = """
WITH ids AS (
    DELETE FROM members_rfmdirty
    WHERE member_id IN (SELECT member_id FROM members_rfmdirty LIMIT %(batch)s)
    RETURNING member_id
), stats AS (
    SELECT o.member_id, count(*) AS n, sum(o.amount - o.refunded_amount) AS spend,
           max(o.paid_at) AS last, min(o.paid_at) AS first
    FROM ids JOIN members_order o ON o.member_id = ids.member_id
    WHERE o.status <> 'refunded' AND o.paid_at > %(start)s
    GROUP BY o.member_id
), gone AS (
    DELETE FROM members_memberrfm r USING ids
    WHERE r.member_id = ids.member_id
      AND NOT EXISTS (SELECT 1 FROM stats s WHERE s.member_id = r.member_id)
    RETURNING r.member_id, r.rfm_class
), left_classes AS (
    -- A buyer with no purchase left in the window leaves their class: a movement to "".
    INSERT INTO members_rfmmovement (day, from_class, to_class, members)
    SELECT %(day)s, rfm_class, '', count(*) FROM gone WHERE rfm_class <> '' GROUP BY rfm_class
    ON CONFLICT (day, from_class, to_class) DO UPDATE
        SET members = members_rfmmovement.members + excluded.members
), kept AS (
    INSERT INTO members_memberrfm (member_id, frequency, monetary, last_order_at,
                                   first_in_window, rfm_class)
    SELECT member_id, n, spend, last, first, '' FROM stats
    ON CONFLICT (member_id) DO UPDATE SET frequency = excluded.frequency,
        monetary = excluded.monetary, last_order_at = excluded.last_order_at,
        first_in_window = excluded.first_in_window
    RETURNING member_id
), counted AS (
    -- These members' new orders are in the recount already: no delta for them later.
    DELETE FROM members_rfmneworder q USING members_order o, ids
    WHERE q.order_id = o.id AND o.member_id = ids.member_id
)
SELECT (SELECT count(*) FROM ids), (SELECT count(*) FROM kept), (SELECT count(*) FROM gone)
"""

DELTA_SQL = """
WITH taken AS (
    DELETE FROM members_rfmneworder
    WHERE order_id IN (SELECT order_id FROM members_rfmneworder LIMIT %(batch)s)
    RETURNING order_id
), delta AS (
    SELECT o.member_id, count(*) AS n, sum(o.amount - o.refunded_amount) AS spend,
           max(o.paid_at) AS last, min(o.paid_at) AS first
    FROM taken JOIN members_order o ON o.id = taken.order_id
    WHERE o.status <> 'refunded' AND o.paid_at > %(start)s
    GROUP BY o.member_id
), grown AS (
    INSERT INTO members_memberrfm (member_id, frequency, monetary, last_order_at,
                                   first_in_window, rfm_class)
    SELECT member_id, n, spend, last, first, '' FROM delta
    ON CONFLICT (member_id) DO UPDATE SET
        frequency = members_memberrfm.frequency + excluded.frequency,
        monetary = members_memberrfm.monetary + excluded.monetary,
        last_order_at = GREATEST(members_memberrfm.last_order_at, excluded.last_order_at),
        first_in_window = LEAST(members_memberrfm.first_in_window, excluded.first_in_window)
    RETURNING member_id
)
SELECT (SELECT count(*) FROM taken), (SELECT count(*) FROM grown)
"""


@dataclass
class RecountResult:
    members: int = 0  # recounted from their orders (refunds, merges)
    buyers: int = 0
    dropped: int = 0
    new_orders: int = 0  # added as deltas
    grown: int = 0  # members whose facts grew by them


def rfm_recount(*, now: datetime | None = None, batch: int = RECOUNT_BATCH) -> RecountResult:
    """Recount queued members, then add queued new orders, a batch per transaction."""
    now = now or timezone.now()
    total = RecountResult()
    _recount_members(total, now, batch)
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            _lock(cursor)
            start = _window_start(RfmSettings.current(), now)
            cursor.execute(DELTA_SQL, {"batch": batch, "start": start})
            taken, grown = cursor.fetchone() or (0, 0)
        total.new_orders += taken
        total.grown += grown
        if taken < batch:
            return total


def _recount_members(total: RecountResult, now: datetime, batch: int) -> None:
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            _lock(cursor)
            start = _window_start(RfmSettings.current(), now)
            cursor.execute(
                RECOUNT_SQL, {"batch": batch, "start": start, "day": timezone.localdate(now)}
            )
            members, buyers, dropped = cursor.fetchone() or (0, 0, 0)
        total.members += members
        total.buyers += buyers
        total.dropped += dropped
        if members < batch:
            return


FULL_SQL = """
INSERT INTO members_memberrfm (member_id, frequency, monetary, last_order_at, first_in_window,
                               rfm_class, class_since, previous_class)
SELECT s.member_id, s.n, s.spend, s.last, s.first, COALESCE(p.rfm_class, ''), p.class_since,
       COALESCE(p.previous_class, '')
FROM (
    SELECT o.member_id, count(*) AS n, sum(o.amount - o.refunded_amount) AS spend,
           max(o.paid_at) AS last, min(o.paid_at) AS first
    FROM members_order o
    WHERE o.status <> 'refunded' AND o.paid_at > %(start)s
    GROUP BY o.member_id
) s
LEFT JOIN rfm_previous p ON p.member_id = s.member_id
"""


@transaction.atomic
def rfm_full_recompute(*, now: datetime | None = None) -> int:
    """Rebuild every buyer's facts from the orders (after the window changes). The
    table is locked while it is rebuilt; each member's last class is kept."""
    now = now or timezone.now()
    settings = RfmSettings.current()
    with connection.cursor() as cursor:
        _lock(cursor)
        settings.window_start = now - timedelta(days=settings.window_days)
        settings.save(update_fields=["window_start"])
        cursor.execute(
            "CREATE TEMP TABLE rfm_previous ON COMMIT DROP AS "
            "SELECT member_id, rfm_class, class_since, previous_class FROM members_memberrfm "
            "WHERE rfm_class <> ''"
        )
        # TRUNCATE refuses while deferred foreign-key checks of earlier writes in this
        # transaction are pending: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE members_memberrfm, members_rfmdirty, members_rfmneworder")
        # Indexes are built once after the bulk insert rather than row by row (measured:
        # a third faster); the table is locked by the TRUNCATE until commit anyway.
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute("ALTER TABLE members_memberrfm DROP CONSTRAINT members_memberrfm_pkey")
        cursor.execute("DROP INDEX rfm_window_idx")
        cursor.execute(FULL_SQL, {"start": settings.window_start})
        buyers = cursor.rowcount
        cursor.execute("ALTER TABLE members_memberrfm ADD PRIMARY KEY (member_id)")
        cursor.execute("CREATE INDEX rfm_window_idx ON members_memberrfm (first_in_window)")
        cursor.execute("ANALYZE members_memberrfm")
    rfm_refresh_cuts(now=now)
    return buyers


def rfm_refresh_cuts(*, now: datetime | None = None) -> RfmSettings:
    """Cut points in force: HQ's thresholds, or the current buyers' quintiles."""
    now = now or timezone.now()
    settings = RfmSettings.current()
    if settings.method == RfmMethod.THRESHOLDS:
        settings.r_cuts = list(settings.r_thresholds)
        settings.f_cuts = list(settings.f_thresholds)
        settings.m_cuts = [Decimal(v) for v in settings.m_thresholds]
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (
                           ORDER BY floor(extract(epoch FROM %s - last_order_at) / 86400)),
                       percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8])
                           WITHIN GROUP (ORDER BY frequency),
                       percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8])
                           WITHIN GROUP (ORDER BY monetary)
                FROM members_memberrfm
                """,
                [now],
            )
            row: Any = cursor.fetchone()
        r, f, m = row if row else (None, None, None)
        if r is not None and f is not None and m is not None:
            settings.r_cuts = [int(v) for v in r]
            settings.f_cuts = [int(v) for v in f]
            settings.m_cuts = list(m)
    settings.scored_at = now
    settings.save(update_fields=["r_cuts", "f_cuts", "m_cuts", "scored_at"])
    return settings


# --- scores and classes on read --------------------------------------------------------------


def score_sql(
    settings: RfmSettings, now: datetime, alias: str = "r"
) -> tuple[str, str, str, list[Any]]:
    """SQL for the R, F and M scores of rows of members_memberrfm `alias`, and their
    parameters (in the order the three expressions use them)."""
    days = f"floor(extract(epoch FROM %s::timestamptz - {alias}.last_order_at) / 86400)"
    r_sql = "(5 - (" + " + ".join(f"({days} > %s)::int" for _ in range(4)) + "))"
    f_sql = "(1 + " + " + ".join(f"({alias}.frequency > %s)::int" for _ in range(4)) + ")"
    m_sql = "(1 + " + " + ".join(f"({alias}.monetary > %s)::int" for _ in range(4)) + ")"
    params: list[Any] = []
    for cut in settings.r_cuts:
        params.extend([now, cut])
    params.extend(settings.f_cuts)
    params.extend(settings.m_cuts)
    return r_sql, f_sql, m_sql, params


def class_sql(settings: RfmSettings, now: datetime, alias: str = "r") -> tuple[str, list[Any]]:
    r_sql, f_sql, m_sql, params = score_sql(settings, now, alias)
    high = settings.high_score
    sql = (
        f"(CASE WHEN {r_sql} >= {high} THEN 'H' ELSE 'L' END || "
        f"CASE WHEN {f_sql} >= {high} THEN 'H' ELSE 'L' END || "
        f"CASE WHEN {m_sql} >= {high} THEN 'H' ELSE 'L' END)"
    )
    return sql, params


def value_cell_sql(settings: RfmSettings, member_alias: str) -> tuple[str, list[Any]]:
    """The value-matrix cell of member `member_alias` from its two points balances."""
    activity = (
        "COALESCE((SELECT a.balance FROM members_pointsaccount a "
        f"WHERE a.member_id = {member_alias}.id AND a.kind = 'activity'), 0)"
    )
    growth = (
        "COALESCE((SELECT a.balance FROM members_pointsaccount a "
        f"WHERE a.member_id = {member_alias}.id AND a.kind = 'growth'), 0)"
    )
    sql = (
        f"(CASE WHEN {activity} >= %s THEN CASE WHEN {growth} >= %s THEN 'core' ELSE 'fans' END "
        f"ELSE CASE WHEN {growth} >= %s THEN 'quiet_spenders' ELSE 'ordinary' END END)"
    )
    return sql, [settings.activity_high, settings.growth_high, settings.growth_high]


# --- nightly review --------------------------------------------------------------------------


@dataclass
class NightlyResult:
    left_window: int
    recount: RecountResult
    moved: int


def rfm_nightly(*, now: datetime | None = None) -> NightlyResult:
    """Move the window forward, recount whoever it changed, refresh the cut points and
    record the members who moved between classes."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor)
        settings = RfmSettings.current()
        start = now - timedelta(days=settings.window_days)
        cursor.execute(
            "INSERT INTO members_rfmdirty (member_id) SELECT member_id FROM members_memberrfm "
            "WHERE first_in_window <= %s ON CONFLICT DO NOTHING",
            [start],
        )
        left = cursor.rowcount
        settings.window_start = start
        settings.save(update_fields=["window_start"])
    recount = rfm_recount(now=now)
    settings = rfm_refresh_cuts(now=now)
    moved = _record_movements(settings, now)
    return NightlyResult(left, recount, moved)


MOVEMENT_SQL = """
WITH now_class AS MATERIALIZED (
    SELECT r.member_id, r.rfm_class AS before, {klass} AS after
    FROM members_memberrfm r
), changed AS (
    UPDATE members_memberrfm r SET rfm_class = c.after, previous_class = c.before,
        class_since = %(day)s
    FROM now_class c WHERE r.member_id = c.member_id AND c.before <> c.after
    RETURNING c.before, c.after
), counted AS (
    INSERT INTO members_rfmmovement (day, from_class, to_class, members)
    SELECT %(day)s, before, after, count(*) FROM changed GROUP BY before, after
    ON CONFLICT (day, from_class, to_class) DO UPDATE
        SET members = members_rfmmovement.members + excluded.members
    RETURNING members
)
SELECT COALESCE(sum(members), 0) FROM counted
"""


def _record_movements(settings: RfmSettings, now: datetime) -> int:
    klass, params = class_sql(settings, now)
    sql = MOVEMENT_SQL.format(klass=klass)
    # Named and positional parameters cannot mix: inline the class's as named ones.
    named: dict[str, Any] = {"day": timezone.localdate(now)}
    for index, value in enumerate(params):
        sql = sql.replace("%s", f"%(p{index})s", 1)
        named[f"p{index}"] = value
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor)
        cursor.execute(sql, named)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


CLASS_NAMES = dict(RfmClass.choices)


@transaction.atomic
def rfm_settings_save(*, form: Any, actor: Any) -> RfmSettings:
    """Save HQ's RFM settings, audited. A new window length rebuilds every buyer's facts
    (in the background); new scoring rules refresh the cut points at once."""
    from members.tasks import recompute_rfm
    from scrm.core.services import audit_record

    before = RfmSettings.current()
    old_window = before.window_days
    settings: RfmSettings = form.save()
    audit_record(
        actor=actor,
        action="rfm.settings",
        target=settings,
        data={name: str(value) for name, value in form.cleaned_data.items()},
    )
    if settings.window_days != old_window:
        transaction.on_commit(recompute_rfm.delay)
    else:
        rfm_refresh_cuts()
    return settings
