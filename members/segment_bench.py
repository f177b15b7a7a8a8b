"""`bench segments`: RFM recompute and incremental recount, and live counts of random
rule trees through the builder's endpoint, at a million members and ten million orders.

Runs in a scratch database (created, filled with generate_series, dropped). Figures:
- RFM full recompute vs a plain `GROUP BY` of the same orders (target ≤ 1.5×); the
  incremental recount after 100k new orders (target ≤ 2 s).
- Live count: 1,000 random trees of 2–12 conditions POSTed through the test client to
  /hq/segments/count/, p95 against the straightforward SQL (one EXISTS per condition)
  for the same trees (every tree up to 100k members, an even sample of 100 above); every
  count compared must equal the SQL count.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import time
from typing import Any

from django.db import connection

from scrm.core.bench import BenchResult, register, scratch_database

ORDERS_PER_MEMBER = 10
TAGS = 200
TREES = 1000
NEW_ORDERS = 100_000
# The SQL baseline takes seconds a tree at a million members: it runs on every tree up to
# 100k members and on an even sample of 100 trees above (the output says how many).
BASELINE_SAMPLE = 100


def _fill(size: int, orders: int) -> dict[str, float]:
    """Members, orders with lines, tags (skewed), points, tiers — set-based."""
    timings: dict[str, float] = {}

    def step(name: str, sql: str, params: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params or {})
        timings[name] = timings.get(name, 0) + time.perf_counter() - started

    step(
        "stores",
        """
        INSERT INTO org_region (code, name, created_at, updated_at)
        VALUES ('bench', '基准大区', now(), now());
        INSERT INTO org_store (code, name, city, address, region_id, is_active, created_at,
                               updated_at)
        SELECT 'B' || g, '门店' || g, (ARRAY['上海','北京','杭州','广州','成都'])[1 + g %% 5], '',
               (SELECT id FROM org_region WHERE code = 'bench'), true, now(), now()
        FROM generate_series(1, 20) g;
        """,
    )
    step(
        "members",
        """
        INSERT INTO members_member (id, name, gender, birthday, phone_last4, city, home_store_id,
            source_channel, lifecycle_stage, member_since, created_at, updated_at,
            order_count, total_spent)
        SELECT g, '会员' || g,
               (ARRAY['f','f','f','m','m','u'])[1 + (hashint4(g) & 2147483647) %% 6],
               CASE WHEN g %% 5 = 0 THEN NULL
                    ELSE DATE '1965-01-01' + (hashint4(g + 1) & 2147483647) %% 14000 END,
               lpad((g %% 10000)::text, 4, '0'),
               (ARRAY['上海','北京','杭州','广州','成都','深圳','南京','武汉'])
                   [1 + (hashint4(g + 2) & 2147483647) %% 8],
               (SELECT min(id) FROM org_store) + (hashint4(g + 3) & 2147483647) %% 20,
               (ARRAY['store','mini_program','tmall','jd','wecom','pos'])
                   [1 + (hashint4(g + 4) & 2147483647) %% 6],
               (ARRAY['prospect','member','new','repeat','loyal','sleeping','churned'])
                   [1 + (hashint4(g + 5) & 2147483647) %% 7],
               CASE WHEN g %% 7 = 0 THEN NULL
                    ELSE now() - make_interval(days => (hashint4(g + 6) & 2147483647) %% 900)
               END,
               now(), now(), 0, 0
        FROM generate_series(1, %(size)s) g;
        SELECT setval(pg_get_serial_sequence('members_member', 'id'), %(size)s);
        """,
        {"size": size},
    )
    step(
        "orders",
        """
        INSERT INTO members_order (id, channel, external_id, member_id, paid_at, amount,
                                   refunded_amount, status, created_at)
        SELECT g, 'pos', 'B' || g, 1 + (hashint4(g) & 2147483647) %% %(size)s,
               now() - make_interval(secs => 60 + (hashint4(g + 1) & 2147483647) %% 63072000),
               (ARRAY[59, 99, 199, 299, 459, 899, 1299])[1 + (hashint4(g + 2) & 2147483647) %% 7],
               0,
               CASE WHEN g %% 20 = 0 THEN 'refunded' ELSE 'paid' END, now()
        FROM generate_series(1, %(orders)s) g;
        SELECT setval(pg_get_serial_sequence('members_order', 'id'), %(orders)s);
        UPDATE members_order SET refunded_amount = amount WHERE status = 'refunded';
        INSERT INTO members_orderline (order_id, sku, product_name, category, quantity,
                                       unit_price, amount)
        SELECT g, 'SKU-' || (hashint4(g + 3) & 2147483647) %% 50, '商品',
               (ARRAY['洁面','护肤水','精华','防晒','面霜','面膜','奶粉','纸尿裤','营养品',
                      '家居','食品','彩妆'])[1 + (hashint4(g + 3) & 2147483647) %% 50 %% 12],
               1, 99, 99
        FROM generate_series(1, %(orders)s) g;
        """,
        {"size": size, "orders": orders},
    )
    step(
        "member statistics",
        """
        UPDATE members_member m SET order_count = s.n, total_spent = s.spent,
            first_order_at = s.first, last_order_at = s.last
        FROM (
            SELECT member_id, count(*) AS n, sum(amount - refunded_amount) AS spent,
                   min(paid_at) AS first, max(paid_at) AS last
            FROM members_order WHERE status <> 'refunded' GROUP BY member_id
        ) s WHERE m.id = s.member_id;
        """,
    )
    # Tag k is held by a share of members falling off as 1/k: about ten tags a member.
    step(
        "tags",
        """
        INSERT INTO members_taggroup (name, choice, description, position, created_at)
        SELECT '组' || g, 'multiple', '', g, now() FROM generate_series(1, 20) g;
        INSERT INTO members_tag (group_id, name, description, active, created_at)
        SELECT (SELECT min(id) FROM members_taggroup) + (g - 1) / 10, '标签' || g, '', true, now()
        FROM generate_series(1, %(tags)s) g;
        INSERT INTO members_membertag (member_id, tag_id, source, source_ref, added_at)
        SELECT m.id, t.id, 'import', 'bench', now()
        FROM members_tag t
        CROSS JOIN LATERAL (
            SELECT g AS id FROM generate_series(1, %(size)s) g
            WHERE (hashint8(g * 1000 + t.id) & 2147483647) %% 100000
                  < least(100000, 170000 / (t.id - (SELECT min(id) FROM members_tag) + 1))
        ) m;
        """,
        {"size": size, "tags": TAGS},
    )
    step(
        "points and tiers",
        """
        INSERT INTO members_pointsaccount (member_id, kind, balance, updated_at)
        SELECT g, 'activity', (hashint4(g + 7) & 2147483647) %% 3000, now()
        FROM generate_series(1, %(size)s) g WHERE g %% 3 <> 0;
        INSERT INTO members_pointsaccount (member_id, kind, balance, updated_at)
        SELECT g, 'growth', (hashint4(g + 8) & 2147483647) %% 10000, now()
        FROM generate_series(1, %(size)s) g WHERE g %% 2 = 0;
        INSERT INTO members_tier (name, rank, threshold, window_days, valid_days,
            retain_threshold, grace_days, points_multiplier, discount_rate, free_delivery,
            priority_service)
        VALUES ('银卡', 1, 1000, 365, 365, 500, 30, 1, 1, false, false),
               ('金卡', 2, 5000, 365, 365, 2500, 30, 1, 1, false, false);
        INSERT INTO members_membertier (member_id, tier_id, manual_reason)
        SELECT g, (SELECT min(id) FROM members_tier) + g %% 2, ''
        FROM generate_series(1, %(size)s) g WHERE g %% 3 = 0;
        """,
        {"size": size},
    )
    step("analyze", "VACUUM ANALYZE")
    return {name: round(seconds, 1) for name, seconds in timings.items()}


def _rfm(size: int, orders: int) -> dict[str, Any]:
    from members.services.rfm import rfm_full_recompute, rfm_recount

    with connection.cursor() as cursor:
        cursor.execute("SELECT now() - interval '365 days'")
        start = cursor.fetchone()[0]
        began = time.perf_counter()
        # The plain GROUP BY, materialised as the recompute materialises its result.
        cursor.execute(
            """
            CREATE TEMP TABLE plain_rfm AS
            SELECT member_id, count(*) AS n, sum(amount - refunded_amount) AS spend,
                   max(paid_at) AS last, min(paid_at) AS first
            FROM members_order WHERE status <> 'refunded' AND paid_at > %s
            GROUP BY member_id
            """,
            [start],
        )
        plain = time.perf_counter() - began
        cursor.execute("SELECT count(*) FROM plain_rfm")
        plain_rows = cursor.fetchone()[0]
        cursor.execute("DROP TABLE plain_rfm")
    began = time.perf_counter()
    buyers = rfm_full_recompute()
    full = time.perf_counter() - began
    # 100k new orders arrive (as an import writes them: rows plus the dirty marks).
    new = min(NEW_ORDERS, orders)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO members_order (id, channel, external_id, member_id, paid_at, amount,
                                       refunded_amount, status, created_at)
            SELECT %(base)s + g, 'pos', 'N' || g, 1 + (hashint4(g + 99) & 2147483647) %% %(size)s,
                   now() - make_interval(mins => g %% 600), 199, 0, 'paid', now()
            FROM generate_series(1, %(new)s) g;
            INSERT INTO members_rfmneworder (order_id)
            SELECT id FROM members_order WHERE id > %(base)s;
            """,
            {"base": orders, "new": new, "size": size},
        )
    began = time.perf_counter()
    recount = rfm_recount()
    incremental = time.perf_counter() - began
    return {
        "full_recompute_seconds": round(full, 2),
        "plain_group_by_seconds": round(plain, 2),
        "full_vs_group_by": round(full / plain, 2),
        "buyers": buyers,
        "group_by_rows": plain_rows,
        "new_orders": new,
        "incremental_members": recount.grown,
        "incremental_seconds": round(incremental, 2),
    }


def _live_counts(trees: int, baseline_every: int) -> dict[str, Any]:
    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings

    from members.segments.engine import ENGINE
    from members.segments.evaluate import check_rules, rule_members
    from members.segments.random_trees import random_tree, vocabulary
    from scrm.org.models import Staff

    hq = Staff.objects.create_user(username="bench_hq", password="x", role="hq_admin")
    began = time.perf_counter()
    with override_settings(SEGMENT_ENGINE=True, SEGMENT_ENGINE_MAX_AGE=86_400):
        ENGINE.rebuild()
    build_seconds = time.perf_counter() - began
    snapshot = ENGINE.snapshot
    assert snapshot is not None
    words = vocabulary()
    rng = random.Random(20261123)
    raw_trees = [random_tree(rng, words, rng.randrange(2, 13)) for _ in range(trees)]
    client = Client()
    client.force_login(hq)
    engine_ms: list[float] = []

    with override_settings(
        SEGMENT_ENGINE=True, SEGMENT_ENGINE_MAX_AGE=86_400, ALLOWED_HOSTS=["testserver"]
    ):
        for raw in raw_trees[:20]:  # warm-up: first touches of each array
            client.post("/hq/segments/count/", json.dumps({"rules": raw}), "application/json")
        for raw in raw_trees:
            began = time.perf_counter()
            response = client.post(
                "/hq/segments/count/", json.dumps({"rules": raw}), "application/json"
            )
            engine_ms.append((time.perf_counter() - began) * 1000)
            body = response.json()
            if response.status_code != 200 or body.get("source") != "snapshot":
                raise RuntimeError(f"count failed: {response.status_code} {body}")
    # Counts are compared at one fixed moment: the SQL runs minutes after the endpoint, and
    # windows ("in the last 30 days") move with the clock in between.
    from django.utils import timezone

    moment = timezone.now()
    baseline_ms: list[float] = []
    mismatches = 0
    for raw in raw_trees[::baseline_every]:
        tree = check_rules(raw, user=hq)
        engine_count, _mask = ENGINE.count(tree, user=hq, now=moment)
        began = time.perf_counter()
        expected = rule_members(tree, user=hq, now=moment).count()
        baseline_ms.append((time.perf_counter() - began) * 1000)
        mismatches += expected != engine_count
    del settings
    return {
        "trees": trees,
        "snapshot_build_seconds": round(build_seconds, 1),
        "engine_p50_ms": round(statistics.median(engine_ms), 1),
        "engine_p95_ms": round(_p95(engine_ms), 1),
        "baseline_p50_ms": round(statistics.median(baseline_ms), 1),
        "baseline_p95_ms": round(_p95(baseline_ms), 1),
        "baseline_trees": len(baseline_ms),
        "counts_equal": mismatches == 0,
        "mismatches": mismatches,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


@register(
    "segments",
    default_size=1_000_000,
    ci_size=2_000,
    description="RFM recompute and incremental recount; live counts of 1,000 random rule "
    "trees through the builder endpoint vs one-EXISTS-per-condition SQL",
)
def segments_bench(size: int) -> BenchResult:

    name = f"scrm_segbench_{os.getpid()}"
    orders = size * ORDERS_PER_MEMBER
    trees = TREES if size >= 100_000 else 100
    with scratch_database(name):
        fill = _fill(size, orders)
        rfm = _rfm(size, orders)
        baseline_every = 1 if size <= 100_000 else max(1, trees // BASELINE_SAMPLE)
        live = _live_counts(trees, baseline_every)
    return BenchResult(
        figures={
            "members": size,
            "orders": orders,
            "live_count": {
                key: live[key]
                for key in (
                    "trees",
                    "engine_p50_ms",
                    "engine_p95_ms",
                    "baseline_trees",
                    "counts_equal",
                    "mismatches",
                    "snapshot_build_seconds",
                    "peak_rss_mb",
                )
            },
            "rfm": rfm,
            "data_load_seconds": fill,
        },
        baseline={
            "sql_one_exists_per_condition_p50_ms": live["baseline_p50_ms"],
            "sql_one_exists_per_condition_p95_ms": live["baseline_p95_ms"],
            "plain_group_by_seconds": rfm["plain_group_by_seconds"],
        },
        ratio=live["baseline_p95_ms"] / max(live["engine_p95_ms"], 0.001),
        ratio_means="SQL p95 ÷ live-count endpoint p95 (higher is better)",
    )
