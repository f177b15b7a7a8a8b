"""`bench dashboards`: every HQ dashboard page at a million members and ten million
orders, read through the test client, against computing the same figures from the raw
tables in the same run.

Runs in a scratch database (created, filled set-based with generate_series, dropped).
The history is two and a half years deep: members joining every day, orders over two
years (5 % refunded), lifecycle changes, points earned, spent and expired, tags, tiers,
RFM classes, a year of daily snapshots, and twelve broadcasts and a three-wave journey
sent to a tenth of the pool each (one broadcast with a control group), with opens,
clicks and the conversions attribution makes of them.

Figures: the time to build the aggregates from nothing (`analytics_rebuild`, the
attribution and the funnel facts), then for each page its p50 and p95 over repeated
GETs (40) by head office — at the page's default range and over a full year — and the p95
of the raw computation of the same figures (a few runs: it takes seconds). Targets:
every page p95 < 500 ms and ≥ 10× faster than the raw computation.
"""

from __future__ import annotations

import os
import resource
import statistics
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection

from scrm.core.bench import BenchResult, register, scratch_database

ORDERS_PER_MEMBER = 10
STORES = 20
BROADCASTS = 12
HISTORY_DAYS = 900
PAGE_RUNS = 40
RAW_RUNS = 3


def _fill(size: int, orders: int) -> dict[str, float]:
    """The raw tables, set-based. Times per step, in seconds."""
    timings: dict[str, float] = {}
    params = {"size": size, "orders": orders, "history": HISTORY_DAYS, "stores": STORES}

    def step(name: str, sql: str) -> None:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        timings[name] = round(time.perf_counter() - started, 1)

    step(
        "stores",
        """
        INSERT INTO org_region (code, name, created_at, updated_at)
        VALUES ('bench', '基准大区', now(), now());
        INSERT INTO org_store (code, name, city, address, region_id, is_active, created_at,
                               updated_at)
        SELECT 'B' || g, '门店' || g, '上海', '', (SELECT id FROM org_region), true, now(), now()
        FROM generate_series(1, %(stores)s) g;
        """,
    )
    step(
        "members",
        """
        INSERT INTO members_member (id, name, gender, phone_last4, city, home_store_id,
            source_channel, lifecycle_stage, member_since, created_at, updated_at,
            order_count, total_spent)
        SELECT g, '会员' || g, 'f', lpad((g %% 10000)::text, 4, '0'), '上海',
               (SELECT min(id) FROM org_store) + (hashint4(g + 3) & 2147483647) %% %(stores)s,
               (ARRAY['store','mini_program','tmall','jd','wecom','pos'])
                   [1 + (hashint4(g + 4) & 2147483647) %% 6],
               (ARRAY['prospect','private','member','new','repeat','loyal','sleeping',
                      'churned'])[1 + (hashint4(g + 5) & 2147483647) %% 8],
               NULL,
               now() - make_interval(days => (%(history)s - 1) * g / %(size)s,
                                     secs => (hashint4(g + 6) & 2147483647) %% 86400),
               now(), 0, 0
        FROM generate_series(1, %(size)s) g;
        UPDATE members_member SET member_since = created_at + interval '2 days'
        WHERE id %% 3 <> 0;
        SELECT setval(pg_get_serial_sequence('members_member', 'id'), %(size)s);
        """,
    )
    step(
        "orders",
        """
        INSERT INTO members_order (id, channel, external_id, member_id, store_id, paid_at,
                                   amount, refunded_amount, status, created_at)
        SELECT g, (ARRAY['pos','tmall','jd','mini_program'])[1 + g %% 4], 'B' || g,
               o.member_id, (SELECT min(id) FROM org_store) + o.member_id %% %(stores)s,
               o.paid_at,
               (ARRAY[59, 99, 199, 299, 459, 899, 1299])[1 + (hashint4(g + 2) & 2147483647) %% 7],
               0, 'paid', o.paid_at + interval '1 minute'
        FROM generate_series(1, %(orders)s) g
        CROSS JOIN LATERAL (
            SELECT 1 + (hashint4(g) & 2147483647) %% %(size)s AS member_id,
                   now() - make_interval(secs => 600 + (hashint4(g + 1) & 2147483647)
                                                 %% 63072000) AS paid_at
        ) o;
        SELECT setval(pg_get_serial_sequence('members_order', 'id'), %(orders)s);
        UPDATE members_order SET refunded_amount = amount, status = 'refunded'
        WHERE id %% 20 = 0;
        UPDATE members_member m SET order_count = s.n, total_spent = s.spent,
            first_order_at = s.first, last_order_at = s.last
        FROM (
            SELECT member_id, count(*) AS n, sum(amount - refunded_amount) AS spent,
                   min(paid_at) AS first, max(paid_at) AS last
            FROM members_order GROUP BY member_id
        ) s WHERE m.id = s.member_id;
        """,
    )
    step(
        "lifecycle changes",
        """
        INSERT INTO members_lifecyclechange (member_id, from_stage, to_stage, reason,
                                             changed_at)
        SELECT m.id, c.from_stage, c.to_stage, 'bench', m.created_at + c.after
        FROM members_member m
        CROSS JOIN (VALUES ('prospect', 'member', interval '2 days'),
                           ('member', 'new', interval '30 days')) c(from_stage, to_stage, after)
        WHERE m.created_at + c.after < now();
        """,
    )
    step(
        "points",
        """
        INSERT INTO members_pointsaccount (member_id, kind, balance, updated_at)
        SELECT g, 'activity', (hashint4(g + 7) & 2147483647) %% 3000, now()
        FROM generate_series(1, %(size)s) g;
        INSERT INTO members_ledgerentry (account_id, kind, amount, balance_after, source,
                                         external_id, reason, created_at)
        SELECT a.id, e.kind, e.amount, 0, 'bench', a.id || '-' || e.n, '',
               now() - make_interval(days => (hashint8(a.id + e.n) & 2147483647) %% 700)
        FROM members_pointsaccount a
        CROSS JOIN (VALUES (1, 'earn', 500), (2, 'earn', 300), (3, 'redeem', -200),
                           (4, 'expire', -100)) e(n, kind, amount);
        """,
    )
    step(
        "tags, tiers and RFM",
        """
        INSERT INTO members_taggroup (name, choice, description, position, created_at)
        VALUES ('基准', 'multiple', '', 1, now());
        INSERT INTO members_tag (group_id, name, description, active, created_at)
        VALUES ((SELECT id FROM members_taggroup), '高潜', '', true, now());
        INSERT INTO members_membertag (member_id, tag_id, source, source_ref, added_at)
        SELECT g, (SELECT id FROM members_tag), 'import', 'bench', now()
        FROM generate_series(1, %(size)s) g WHERE g %% 10 < 3;
        INSERT INTO members_tier (name, rank, threshold, window_days, valid_days,
            retain_threshold, grace_days, points_multiplier, discount_rate, free_delivery,
            priority_service)
        VALUES ('银卡', 1, 1000, 365, 365, 500, 30, 1, 1, false, false),
               ('金卡', 2, 5000, 365, 365, 2500, 30, 1, 1, false, false);
        INSERT INTO members_membertier (member_id, tier_id, manual_reason)
        SELECT g, (SELECT min(id) FROM members_tier) + g %% 2, ''
        FROM generate_series(1, %(size)s) g WHERE g %% 3 = 0;
        INSERT INTO members_memberrfm (member_id, frequency, monetary,
            last_order_at, first_in_window, rfm_class, previous_class, class_since)
        SELECT m.id, m.order_count, m.total_spent, m.last_order_at, m.first_order_at,
               (ARRAY['HHH','HLH','LHH','LLH','HHL','HLL','LHL','LLL'])[1 + m.id %% 8],
               (ARRAY['HHH','HLH','LHH','LLH','HHL','HLL','LHL','LLL'])[1 + m.id %% 7],
               current_date - (m.id %% 365)::int
        FROM members_member m WHERE m.order_count > 0;
        """,
    )
    timings["analyze"] = 0.0
    step("analyze", "VACUUM ANALYZE")
    return timings


def _campaigns(size: int) -> tuple[list[int], int]:
    """Twelve broadcasts over the last sixty days and a three-wave journey (a win-back
    over the whole pool: each wave reaches a tenth of it), each sent to a tenth of the
    pool; a third of each opened, one in twenty clicked. Returns the
    broadcast ids and the campaign id."""
    from django.utils import timezone

    from campaigns.models import Broadcast, Campaign, JourneyStep, Material
    from scrm.org.models import Staff

    operator = Staff.objects.create_user(username="bench_operator", password="x", role="hq_admin")
    material = Material.objects.create(kind="text", title="基准", body="hi")
    now = timezone.now()
    audience = max(1, size // 10)
    broadcasts: list[int] = []
    for n in range(BROADCASTS):
        sent_at = now - timedelta(days=60 - 5 * n)
        broadcast = Broadcast.objects.create(
            name=f"基准群发 {n + 1}",
            channel="inbox" if n % 2 else "sms",
            material=material,
            created_by=operator,
            status="done",
            planned_at=sent_at,
            holdout_percent=10 if n == BROADCASTS - 1 else 0,
        )
        broadcasts.append(broadcast.pk)
        _deliveries(broadcast.pk, broadcast.channel, audience, n, sent_at, control=n == 11)
    campaign = Campaign.objects.create(
        name="基准旅程",
        template="win_back",
        starts_at=now - timedelta(days=30),
        ends_at=now + timedelta(days=30),
        created_by=operator,
        trigger="audience",
        status="active",
    )
    for position in (1, 2, 3):
        step = JourneyStep.objects.create(
            campaign=campaign, position=position, kind="send", channel="inbox", material=material
        )
        sent_at = now - timedelta(days=21 - 7 * position)
        wave = Broadcast.objects.create(
            name=f"wave {position}",
            channel="inbox",
            material=material,
            journey_step=step,
            wave_day=timezone.localdate(sent_at),
            created_by=operator,
            status="done",
            planned_at=sent_at,
        )
        _deliveries(wave.pk, "inbox", audience, 20 + position, sent_at, control=False)
    return broadcasts, campaign.pk


def _deliveries(
    broadcast: int, channel: str, audience: int, seed: int, sent_at: Any, control: bool
) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO campaigns_delivery (broadcast_id, member_id, channel, send_day, status,
                reason, attempts, provider_ref, error, sent_at, opened_at, clicked_at)
            SELECT %(b)s, m, %(channel)s, (%(at)s AT TIME ZONE %(tz)s)::date,
                   CASE WHEN g %% 25 = 0 THEN 'suppressed'
                        WHEN %(control)s AND g %% 10 = 1 THEN 'held_out' ELSE 'sent' END,
                   CASE WHEN g %% 25 = 0 THEN 'frequency_cap' ELSE '' END, 1, '', '',
                   CASE WHEN g %% 25 = 0 THEN NULL
                        ELSE %(at)s + make_interval(secs => g %% 7200) END,
                   CASE WHEN g %% 3 = 0 AND g %% 25 <> 0 THEN %(at)s + interval '3 hours' END,
                   CASE WHEN g %% 20 = 0 AND g %% 25 <> 0 THEN %(at)s + interval '3 hours' END
            FROM generate_series(1, %(n)s) g
            CROSS JOIN LATERAL (
                SELECT DISTINCT 1 + (hashint4(g * 31 + %(seed)s) & 2147483647)
                                %% (SELECT max(id) FROM members_member) AS m
            ) pick
            ON CONFLICT (broadcast_id, member_id) DO NOTHING
            """,
            {
                "b": broadcast,
                "channel": channel,
                "at": sent_at,
                "tz": settings.TIME_ZONE,
                "n": audience,
                "seed": seed,
                "control": control,
            },
        )


def _build() -> dict[str, float]:
    """The aggregates from nothing, as a new installation's first runs would; then a year
    of daily snapshots (the history a year of hourly snapshots leaves behind)."""
    from analytics.services import aggregates_rebuild
    from campaigns.services.attribution import attribution_refresh
    from campaigns.services.funnel import funnel_refresh_nightly

    timings: dict[str, float] = {}
    for name, run in (
        ("analytics_rebuild", aggregates_rebuild),
        ("attribution", attribution_refresh),
        ("funnel_facts", funnel_refresh_nightly),
    ):
        started = time.perf_counter()
        run()
        timings[name] = round(time.perf_counter() - started, 1)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO analytics_snapshotday (day, store_id, dimension, value, members)
            SELECT s.day - d, s.store_id, s.dimension, s.value, s.members
            FROM analytics_snapshotday s CROSS JOIN generate_series(1, 364) d
            WHERE s.day = current_date
            ON CONFLICT DO NOTHING;
            INSERT INTO analytics_pointsday (day, store_id, outstanding)
            SELECT p.day - d, p.store_id, p.outstanding
            FROM analytics_pointsday p CROSS JOIN generate_series(1, 364) d
            WHERE p.day = current_date AND p.outstanding IS NOT NULL
            ON CONFLICT (day, store_id) DO UPDATE SET outstanding = EXCLUDED.outstanding;
            """
        )
        # A settled database, as a running installation's is: without this, autovacuum
        # of the freshly written tables can land in the middle of the page timings.
        cursor.execute("VACUUM ANALYZE")
    return timings


# --- the same figures from the raw tables ------------------------------------------------

TZ = "AT TIME ZONE %(tz)s"

BUYERS_SQL = (
    "SELECT d.status, count(DISTINCT d.id), sum(o.amount - o.refunded_amount)"
    " FROM campaigns_delivery d JOIN members_order o ON o.member_id = d.member_id"
    " AND o.paid_at > d.sent_at AND o.paid_at <= d.sent_at + interval '7 days'"
    " AND o.amount > o.refunded_amount"
    " WHERE {owner} AND d.status IN ('sent', 'held_out') GROUP BY 1"
)
TOUCHPOINTS_SQL = (
    "SELECT t.name, ch.name, count(*), sum(c.revenue) FROM campaigns_conversion c"
    " LEFT JOIN touchpoints_touchpoint t ON t.id = c.touchpoint_id"
    " LEFT JOIN touchpoints_channel ch ON ch.id = t.channel_id"
    " WHERE {owner} GROUP BY 1, 2"
)

RAW: dict[str, list[str]] = {
    "board": [
        "SELECT count(*) FROM members_member WHERE merged_into_id IS NULL",
        "SELECT count(*) FROM members_member WHERE created_at >= now() - interval '56 days'",
        "SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM members_membertag t"
        " WHERE t.member_id = m.id)) FROM members_member m",
        "SELECT lifecycle_stage, count(*) FROM members_member GROUP BY 1",
        "SELECT sum(balance) FROM members_pointsaccount WHERE kind = 'activity'",
        "SELECT count(*) FROM members_membertier",
        "SELECT send_day, count(*) FROM campaigns_delivery WHERE status = 'sent'"
        " AND send_day > current_date - 14 GROUP BY 1",
        "SELECT date_trunc('week', o.paid_at), count(*), sum(o.amount - o.refunded_amount)"
        " FROM members_order o JOIN campaigns_delivery d ON d.member_id = o.member_id"
        " AND d.status = 'sent' AND d.sent_at <= o.paid_at"
        " AND d.sent_at > o.paid_at - interval '7 days'"
        " WHERE o.paid_at > now() - interval '56 days' GROUP BY 1",
    ],
    "pool": [
        f"SELECT (created_at {TZ})::date, source_channel, count(*) FROM members_member"
        " WHERE created_at >= %(start)s GROUP BY 1, 2",
        f"SELECT (c.changed_at {TZ})::date, m.source_channel, count(*)"
        " FROM members_lifecyclechange c JOIN members_member m ON m.id = c.member_id"
        " WHERE c.to_stage = 'member' AND c.changed_at >= %(start)s GROUP BY 1, 2",
    ],
    "lifecycle": [
        "SELECT home_store_id, lifecycle_stage, count(*) FROM members_member"
        " WHERE merged_into_id IS NULL GROUP BY 1, 2",
        "SELECT from_stage, to_stage, count(*) FROM members_lifecyclechange"
        " WHERE changed_at >= %(start)s GROUP BY 1, 2",
    ],
    "tiers": [
        "SELECT m.home_store_id, t.tier_id, count(*) FROM members_member m"
        " LEFT JOIN members_membertier t ON t.member_id = m.id GROUP BY 1, 2",
    ],
    "points": [
        f"SELECT (created_at {TZ})::date, kind, sum(amount) FROM members_ledgerentry"
        " WHERE created_at >= %(start)s GROUP BY 1, 2",
        "SELECT m.home_store_id, sum(a.balance) FROM members_pointsaccount a"
        " JOIN members_member m ON m.id = a.member_id WHERE a.kind = 'activity' GROUP BY 1",
    ],
    "rfm": [
        "SELECT r.rfm_class, count(*) FROM members_memberrfm r GROUP BY 1",
        "SELECT previous_class, rfm_class, count(*) FROM members_memberrfm"
        " WHERE class_since >= %(start_day)s GROUP BY 1, 2",
    ],
    "sales": [
        f"SELECT (o.paid_at {TZ})::date, o.channel, count(*), sum(o.amount),"
        " sum(o.refunded_amount), count(*) FILTER (WHERE o.paid_at = m.first_order_at)"
        " FROM members_order o JOIN members_member m ON m.id = o.member_id"
        " WHERE o.paid_at >= %(start)s GROUP BY 1, 2",
    ],
    "cohorts": [
        f"SELECT date_trunc('month', m.created_at {TZ}), m.source_channel,"
        f" (extract(year FROM age(date_trunc('month', o.paid_at {TZ}),"
        f" date_trunc('month', m.created_at {TZ}))) * 12 + extract(month FROM"
        f" age(date_trunc('month', o.paid_at {TZ}), date_trunc('month', m.created_at {TZ}))))"
        " AS k, count(DISTINCT o.member_id), sum(o.amount - o.refunded_amount)"
        " FROM members_order o JOIN members_member m ON m.id = o.member_id"
        " WHERE m.created_at >= %(start)s AND o.paid_at >= m.created_at GROUP BY 1, 2, 3",
    ],
    "compare": [
        "SELECT d.broadcast_id, count(*), count(*) FILTER (WHERE d.status = 'sent'),"
        " count(d.opened_at), count(d.clicked_at), count(c.order_id), sum(c.revenue)"
        " FROM campaigns_delivery d LEFT JOIN campaigns_conversion c ON c.delivery_id = d.id"
        " WHERE d.send_day >= %(start_day)s GROUP BY 1",
    ],
    # A funnel page by default: its totals (by status and reason), its table by day (a
    # campaign's: by wave), with a control group the buyers within the window among
    # those sent and held out (the uplift), and the orders converted by the touchpoint
    # the customers were won through.
    "broadcast_funnel": [
        f"SELECT CASE WHEN d.status = 'sent' THEN (d.sent_at {TZ})::date ELSE d.send_day END,"
        " d.status, d.reason, count(*), count(d.opened_at), count(d.clicked_at),"
        " count(c.order_id), sum(c.revenue)"
        " FROM campaigns_delivery d LEFT JOIN campaigns_conversion c ON c.delivery_id = d.id"
        " WHERE d.broadcast_id = %(broadcast)s GROUP BY 1, 2, 3",
        BUYERS_SQL.format(owner="d.broadcast_id = %(broadcast)s"),
        TOUCHPOINTS_SQL.format(owner="c.broadcast_id = %(broadcast)s"),
    ],
    "campaign_funnel": [
        "SELECT d.broadcast_id, d.status, d.reason, count(*), count(d.opened_at),"
        " count(d.clicked_at), count(c.order_id), sum(c.revenue)"
        " FROM campaigns_delivery d JOIN campaigns_broadcast b ON b.id = d.broadcast_id"
        " JOIN campaigns_journeystep s ON s.id = b.journey_step_id"
        " LEFT JOIN campaigns_conversion c ON c.delivery_id = d.id"
        " WHERE s.campaign_id = %(campaign)s GROUP BY 1, 2, 3",
        # (the bench's journey has no control group: its page shows no uplift)
        TOUCHPOINTS_SQL.format(owner="c.campaign_id = %(campaign)s"),
    ],
}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def _time_pages(pages: dict[str, str], runs: int) -> dict[str, dict[str, float]]:
    from django.test import Client
    from django.test.utils import override_settings

    from scrm.org.models import Staff

    client = Client()
    client.force_login(Staff.objects.get(username="bench_operator"))
    figures: dict[str, dict[str, float]] = {}
    with override_settings(ALLOWED_HOSTS=["testserver"], DEBUG=False):
        for name, url in pages.items():
            client.get(url)  # warm-up: the first touch of each table
            times = []
            for _run in range(runs):
                began = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - began) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}")
            figures[name] = {
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(_p95(times), 1),
            }
    return figures


def _time_raw(params: dict[str, Any], runs: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    with connection.cursor() as cursor:
        for name, queries in RAW.items():
            times = []
            for _run in range(runs):
                began = time.perf_counter()
                for sql in queries:
                    cursor.execute(sql, params)
                    cursor.fetchall()
                times.append((time.perf_counter() - began) * 1000)
            timings[name] = round(_p95(times), 1)
    return timings


def _measure(broadcasts: list[int], campaign: int) -> dict[str, Any]:
    from django.utils import timezone

    today = timezone.localdate()
    year = f"from={today - timedelta(days=364)}&to={today}"
    funnel = broadcasts[-1]
    defaults = {
        "board": "/hq/",
        "pool": "/hq/monitor/pool/",
        "lifecycle": "/hq/monitor/lifecycle/",
        "tiers": "/hq/monitor/tiers/",
        "points": "/hq/monitor/points/",
        "rfm": "/hq/monitor/rfm/",
        "sales": "/hq/monitor/sales/",
        "cohorts": "/hq/monitor/cohorts/",
        "compare": "/hq/campaigns/compare/",
        "broadcast_funnel": f"/hq/broadcasts/{funnel}/funnel/",
        "campaign_funnel": f"/hq/campaigns/{campaign}/funnel/",
    }
    pages = _time_pages(defaults, PAGE_RUNS)
    year_pages = _time_pages(
        {
            name: f"{url}?{year}"
            for name, url in defaults.items()
            if name not in ("board", "broadcast_funnel", "campaign_funnel")
        },
        PAGE_RUNS,
    )
    # The raw computation of each page over the same range as its year view (the
    # default views' ranges are shorter: the ratio quoted is for the year, the harder
    # case for the aggregates).
    start = timezone.now() - timedelta(days=364)
    raw = _time_raw(
        {
            "tz": settings.TIME_ZONE,
            "start": start,
            "start_day": timezone.localdate(start),
            "broadcast": funnel,
            "campaign": campaign,
        },
        RAW_RUNS,
    )
    ratios = {}
    for name, raw_ms in raw.items():
        page = year_pages.get(name) or pages[name]
        ratios[name] = round(raw_ms / max(page["p95_ms"], 0.1), 3)
    return {"pages": pages, "year": year_pages, "raw_p95_ms": raw, "ratios": ratios}


@register(
    "dashboards",
    default_size=1_000_000,
    ci_size=2_000,
    description="p95 of every HQ dashboard page (aggregates) at 1M members / 10M orders "
    "vs computing the same figures from the raw tables",
)
def dashboards_bench(size: int) -> BenchResult:
    orders = size * ORDERS_PER_MEMBER

    def work() -> dict[str, Any]:
        fill = _fill(size, orders)
        broadcasts, campaign = _campaigns(size)
        build = _build()
        measured = _measure(broadcasts, campaign)
        measured["fill_seconds"] = fill
        measured["build_seconds"] = build
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM campaigns_conversion")
            measured["conversions"] = cursor.fetchone()[0]
        return measured

    with scratch_database(f"scrm_dashbench_{os.getpid()}"):
        measured = work()
    worst_page = max(
        [p["p95_ms"] for p in measured["pages"].values()]
        + [p["p95_ms"] for p in measured["year"].values()]
    )
    worst_ratio = min(measured["ratios"].values())
    return BenchResult(
        figures={
            "members": size,
            "orders": orders,
            "conversions": measured["conversions"],
            "pages_default_range": measured["pages"],
            "pages_one_year": measured["year"],
            "worst_page_p95_ms": worst_page,
            "build_seconds": measured["build_seconds"],
            "data_load_seconds": measured["fill_seconds"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        },
        baseline={"raw_tables_p95_ms": measured["raw_p95_ms"]},
        ratio=worst_ratio,
        ratio_means="the smallest, over the pages, of raw computation p95 ÷ page p95 "
        f"(per page: {measured['ratios']})",
        extra={"ratios": measured["ratios"]},
    )
