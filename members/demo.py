"""Demo members: realistic Chinese names, phones, birthdays, stores, identities and orders,
loaded with COPY (seconds for a million members, not hours)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from members.models import Channel, Gender, IdentityKind, LifecycleStage, Member, OrderStatus
from members.services.bulk import MEMBER_COPY_COLUMNS, allocate_ids, phone_columns
from members.services.lifecycle import lifecycle_refresh_all
from scrm.core.demo import DemoContext, demo_step

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍鹏辉建红梅琳雪婷颖佳欣怡晨宇浩然子涵梓轩诗雨思彤若曦一诺语嫣欣妍"
)
PHONE_PREFIXES = [
    "138",
    "139",
    "137",
    "136",
    "135",
    "150",
    "151",
    "158",
    "159",
    "186",
    "187",
    "188",
    "177",
    "176",
    "199",
    "133",
    "153",
    "180",
    "181",
    "189",
]
CHANNELS = [
    "store",
    "store",
    "store",
    "mini_program",
    "mini_program",
    "tmall",
    "jd",
    "wecom",
    "meituan",
    "douyin",
]
STAGES = [LifecycleStage.MEMBER] * 6 + [LifecycleStage.PRIVATE] * 3 + [LifecycleStage.PROSPECT]


def demo_phone(index: int) -> str:
    """Distinct for every index below 10^8 × 20: 7919 is coprime with 10^8."""
    prefix = PHONE_PREFIXES[index % len(PHONE_PREFIXES)]
    return f"+86{prefix}{(index * 7919) % 100_000_000:08d}"


def member_rows(
    *,
    start: int,
    stop: int,
    stores: list[Any],
    guides_by_store: dict[int, list[int]],
    seed: int,
    now: datetime,
) -> Iterator[tuple[Any, ...]]:
    """Rows for demo members number `start`..`stop-1`; the same index always gives the same row."""
    rng = random.Random(seed)
    # Draw every row from the start so a top-up continues the same sequence.
    for index in range(stop):
        surname = rng.choice(SURNAMES)
        given = "".join(rng.choices(GIVEN, k=rng.choice((1, 2, 2))))
        gender = rng.choice((Gender.FEMALE, Gender.FEMALE, Gender.MALE, Gender.UNKNOWN))
        birthday = date(1965, 1, 1) + timedelta(days=rng.randrange(0, 40 * 365))
        store = stores[rng.randrange(len(stores))]
        guides = guides_by_store.get(store.pk) or []
        guide_id = rng.choice(guides) if guides and rng.random() < 0.75 else None
        age_days = rng.random() ** 2 * 730  # more recent members than old ones
        created = now - timedelta(days=age_days, seconds=rng.randrange(86_400))
        stage = rng.choice(STAGES)
        channel = rng.choice(CHANNELS)
        if index < start:
            continue
        yield (
            surname + given,
            gender,
            birthday if rng.random() < 0.8 else None,
            *phone_columns(demo_phone(index)),
            store.city,
            store.pk,
            guide_id,
            stage,
            channel,
            created,
            created,
        )


PRODUCTS = [
    # (sku, name, category, price)
    ("SK-A001", "氨基酸洁面乳", "洁面", "129.00"),
    ("SK-A002", "玻尿酸保湿水", "护肤水", "199.00"),
    ("SK-A003", "修护精华液", "精华", "459.00"),
    ("SK-A004", "轻盈防晒乳 SPF50", "防晒", "238.00"),
    ("SK-A005", "焕颜面霜", "面霜", "528.00"),
    ("SK-A006", "补水面膜 10片装", "面膜", "159.00"),
    ("MB-B001", "婴儿配方奶粉 3段", "奶粉", "368.00"),
    ("MB-B002", "婴儿纸尿裤 L码", "纸尿裤", "149.00"),
    ("MB-B003", "儿童益生菌", "营养品", "268.00"),
    ("HM-C001", "香薰蜡烛", "家居", "99.00"),
    ("HM-C002", "真丝枕套", "家居", "329.00"),
    ("FD-D001", "精品挂耳咖啡 30包", "食品", "89.00"),
]
ORDER_CHANNELS = [
    Channel.POS,
    Channel.POS,
    Channel.POS,
    Channel.MINI_PROGRAM,
    Channel.TMALL,
    Channel.JD,
    Channel.MEITUAN,
]
MINI_PROGRAM_APP = "sandbox-mini-program"


def _copy(cursor: Any, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
    count = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


@demo_step(order=20)
def seed_members(ctx: DemoContext) -> str:
    """Members with their identities and two years of orders, all loaded with COPY.

    Works in chunks so memory stays flat at a million members. A few planted duplicates
    (the same person registered twice) wait in the review queue.
    """
    existing = Member.all_objects.count()
    if existing >= ctx.members:
        return f"{existing} members already in the pool; none added"
    count = ctx.members - existing
    now = timezone.now()
    rows = member_rows(
        start=existing,
        stop=ctx.members,
        stores=ctx.data["stores"],
        guides_by_store=ctx.data["guides_by_store"],
        seed=ctx.seed,
        now=now,
    )
    rng = random.Random(ctx.seed + existing)
    totals = {"identities": 0, "orders": 0, "twins": 0}
    with transaction.atomic(), connection.cursor() as cursor:
        while chunk := list(islice(rows, SEED_CHUNK)):
            members = _load_member_chunk(cursor, rng, chunk, now, totals)
            if totals["twins"] == 0:
                totals["twins"] = _plant_duplicates(cursor, rng, members, now, wanted=count // 500)
    changed = lifecycle_refresh_all(reason="demo data", now=now)
    return (
        f"{count} members, {totals['identities']} identities, {totals['orders']} orders added "
        f"({existing + count} in the pool; {totals['twins']} planted duplicates; "
        f"{changed} stages set)"
    )


SEED_CHUNK = 50_000


def _load_member_chunk(
    cursor: Any,
    rng: random.Random,
    chunk: list[tuple[Any, ...]],
    now: datetime,
    totals: dict[str, int],
) -> list[tuple[Any, ...]]:
    member_ids = allocate_ids(cursor, "members_member", len(chunk))
    members = []
    for member_id, row in zip(member_ids, chunk, strict=True):
        created = row[-1]
        joined = created + timedelta(hours=rng.randrange(0, 72)) if rng.random() < 0.7 else None
        # The stage is computed afterwards from identities and orders, not drawn at random.
        values = (*row[:9], LifecycleStage.PROSPECT, *row[10:])
        members.append((member_id, *values, joined))
    _copy(cursor, "members_member", ["id", *MEMBER_COPY_COLUMNS, "member_since"], members)

    identities = []
    for member_id, *fields in members:
        digest, hint, source, created = fields[3], fields[4], fields[10], fields[11]
        identities.append((member_id, IdentityKind.PHONE, "", digest, hint, source, created))
        if rng.random() < 0.65:
            identities.append(
                (
                    member_id,
                    IdentityKind.UNIONID,
                    "",
                    f"oU{member_id:010d}demo",
                    "",
                    "mini_program",
                    created,
                )
            )
            identities.append(
                (
                    member_id,
                    IdentityKind.OPENID,
                    MINI_PROGRAM_APP,
                    f"oM{member_id:010d}demo",
                    "",
                    "mini_program",
                    created,
                )
            )
        if rng.random() < 0.15:
            identities.append(
                (member_id, IdentityKind.TMALL, "", f"tb{member_id:09d}", "", "tmall", created)
            )
        if rng.random() < 0.3:
            identities.append(
                (member_id, IdentityKind.POS_CARD, "", f"8800{member_id:010d}", "", "pos", created)
            )
    _copy(
        cursor,
        "members_identity",
        ["member_id", "kind", "app", "value", "hint", "source", "created_at"],
        identities,
    )

    orders, lines = _order_rows(rng, members, now)
    order_ids = allocate_ids(cursor, "members_order", len(orders))
    _copy(
        cursor,
        "members_order",
        [
            "id",
            "channel",
            "external_id",
            "member_id",
            "store_id",
            "guide_id",
            "paid_at",
            "amount",
            "refunded_amount",
            "status",
            "created_at",
        ],
        ((oid, *order) for oid, order in zip(order_ids, orders, strict=True)),
    )
    _copy(
        cursor,
        "members_orderline",
        ["order_id", "sku", "product_name", "category", "quantity", "unit_price", "amount"],
        ((order_ids[i], *line) for i, line in lines),
    )
    cursor.execute(STATS_SQL, [member_ids[0], member_ids[-1]])
    totals["identities"] += len(identities)
    totals["orders"] += len(orders)
    return members


STATS_SQL = """
UPDATE members_member m
SET order_count = s.n, total_spent = s.spent, first_order_at = s.first, last_order_at = s.last
FROM (
    SELECT member_id, count(*) AS n, sum(amount - refunded_amount) AS spent,
           min(paid_at) AS first, max(paid_at) AS last
    FROM members_order
    WHERE member_id BETWEEN %s AND %s AND status <> 'refunded'
    GROUP BY member_id
) s
WHERE m.id = s.member_id
"""


def _order_rows(
    rng: random.Random, members: list[tuple[Any, ...]], now: datetime
) -> tuple[list[tuple[Any, ...]], list[tuple[int, tuple[Any, ...]]]]:
    orders: list[tuple[Any, ...]] = []
    lines: list[tuple[int, tuple[Any, ...]]] = []
    for member_id, *row in members:
        store_id, guide_id, created = row[7], row[8], row[11]
        n = rng.choices((0, 1, 2, 3, 5, 8), weights=(30, 30, 18, 10, 8, 4))[0]
        for _ in range(n):
            days_ago = rng.random() * min(730, max(1, (now - created).days))
            paid = now - timedelta(days=days_ago, minutes=rng.randrange(1440))
            channel = rng.choice(ORDER_CHANNELS)
            in_store = channel == Channel.POS
            total = Decimal("0")
            order_index = len(orders)
            for _line in range(rng.choice((1, 1, 2, 3))):
                sku, name, category, price = rng.choice(PRODUCTS)
                quantity = rng.choice((1, 1, 1, 2, 3))
                amount = (Decimal(price) * quantity).quantize(Decimal("0.01"))
                total += amount
                lines.append((order_index, (sku, name, category, quantity, Decimal(price), amount)))
            roll = rng.random()
            refunded, status = Decimal("0"), OrderStatus.PAID
            if roll < 0.03:
                refunded, status = total, OrderStatus.REFUNDED
            elif roll < 0.06:
                refunded, status = (
                    (total / 2).quantize(Decimal("0.01")),
                    OrderStatus.PARTIALLY_REFUNDED,
                )
            orders.append(
                (
                    channel,
                    f"{channel.upper()[:2]}{member_id:09d}{len(orders):07d}",
                    member_id,
                    store_id if in_store else None,
                    guide_id if in_store else None,
                    paid,
                    total,
                    refunded,
                    status,
                    paid,
                )
            )
    return orders, lines


def _plant_duplicates(
    cursor: Any, rng: random.Random, members: list[tuple[Any, ...]], now: datetime, wanted: int
) -> int:
    """The same person registered twice (same name, birthday and city, another phone)."""
    picks = rng.sample(members, k=min(len(members), max(3, wanted)))
    twin_ids = allocate_ids(cursor, "members_member", len(picks))
    twins, suggestions = [], []
    for twin_id, original in zip(twin_ids, picks, strict=True):
        original_id, name, gender, birthday = original[:4]
        city, store_id = original[7:9]
        # 170 numbers are never drawn for demo members, so a twin's phone is its own.
        phone = f"+86170{twin_id % 10**8:08d}"
        created = now - timedelta(days=rng.randrange(1, 300))
        twins.append(
            (
                twin_id,
                name,
                gender,
                birthday,
                *phone_columns(phone),
                city,
                store_id,
                None,
                LifecycleStage.PROSPECT,
                Channel.IMPORT,
                created,
                created,
            )
        )
        a, b = sorted((original_id, twin_id))
        suggestions.append((a, b, "same name, birthday and city", "[]", "open", now))
    _copy(
        cursor,
        "members_member",
        [
            "id",
            "name",
            "gender",
            "birthday",
            "phone_digest",
            "phone_last4",
            "phone_sealed",
            "city",
            "home_store_id",
            "guide_id",
            "lifecycle_stage",
            "source_channel",
            "created_at",
            "updated_at",
        ],
        twins,
    )
    _copy(
        cursor,
        "members_identity",
        ["member_id", "kind", "app", "value", "hint", "source", "created_at"],
        ((t[0], IdentityKind.PHONE, "", t[4], t[5], "import", t[12]) for t in twins),
    )
    _copy(
        cursor,
        "members_mergesuggestion",
        ["member_a_id", "member_b_id", "reason", "evidence", "status", "created_at"],
        suggestions,
    )
    return len(twins)


DEMO_TIERS = [
    # name, rank, to enter, to keep, points multiplier, discount, free delivery, priority
    ("普卡", 1, 1, 0, "1.00", "1.00", False, False),
    ("银卡", 2, 1000, 500, "1.20", "0.98", False, False),
    ("金卡", 3, 5000, 3000, "1.50", "0.95", True, False),
    ("钻石卡", 4, 20000, 12000, "2.00", "0.90", True, True),
]


@demo_step(order=30)
def seed_loyalty(ctx: DemoContext) -> str:
    """Tiers, coupons, a points mall, and points for the demo members, set-based.

    Growth value is what each member's orders earned; activity points are a sign-up gift
    plus some engagement, in lots expiring over the coming year; tiers follow from growth.
    """
    from members.models import (
        BonusPeriod,
        CouponTemplate,
        PointsAccount,
        Reward,
        Tier,
    )
    from members.services.earning import earn_rules_ensure_defaults

    earn_rules_ensure_defaults()
    if PointsAccount.objects.exists():
        return "loyalty data already present; none added"
    now = timezone.now()
    with transaction.atomic():
        birthday = CouponTemplate.objects.create(
            name="生日蛋糕券", kind="gift", gift="生日蛋糕一份", valid_days=30
        )
        ten_off = CouponTemplate.objects.create(
            name="满200减20", kind="amount_off", amount_off=Decimal(20), min_spend=Decimal(200)
        )
        CouponTemplate.objects.create(name="九折券", kind="percent_off", percent_off=10)
        delivery = CouponTemplate.objects.create(
            name="免运费券", kind="free_delivery", valid_days=60
        )
        tiers = {}
        for name, rank, enter, keep, multiplier, discount, free, priority in DEMO_TIERS:
            tiers[name] = Tier.objects.create(
                name=name,
                rank=rank,
                threshold=enter,
                retain_threshold=keep,
                points_multiplier=Decimal(multiplier),
                discount_rate=Decimal(discount),
                free_delivery=free,
                priority_service=priority,
                birthday_coupon=birthday if rank >= 2 else None,
            )
        Reward.objects.create(
            name="满200减20券", kind="coupon", coupon_template=ten_off, points_price=500, stock=5000
        )
        Reward.objects.create(
            name="免运费券", kind="coupon", coupon_template=delivery, points_price=200, stock=5000
        )
        Reward.objects.create(
            name="品牌帆布袋",
            kind="gift",
            gift="帆布袋",
            points_price=1500,
            stock=200,
            per_member_limit=1,
            min_tier=tiers["银卡"],
        )
        Reward.objects.create(
            name="限量香薰礼盒",
            kind="gift",
            gift="香薰礼盒",
            points_price=5000,
            stock=20,
            per_member_limit=1,
            min_tier=tiers["金卡"],
        )
        BonusPeriod.objects.create(
            name="会员日双倍积分",
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=6),
            multiplier=Decimal(2),
            events=["sign_in", "review"],
        )
        with connection.cursor() as cursor:
            accounts = _seed_points(cursor, now)
            cursor.execute(
                """
                INSERT INTO members_membertier (member_id, tier_id, achieved_at, valid_until,
                    manual_reason)
                SELECT a.member_id,
                       (SELECT t.id FROM members_tier t WHERE t.threshold <= a.balance
                        ORDER BY t.rank DESC LIMIT 1),
                       %(now)s, %(now)s + interval '365 days', ''
                FROM members_pointsaccount a
                WHERE a.kind = 'growth' AND a.balance >= 1
                """,
                {"now": now},
            )
            tiered = cursor.rowcount
            cursor.execute(
                """
                INSERT INTO members_tierchange (member_id, kind, to_tier_id, growth, reason,
                    changed_at)
                SELECT mt.member_id, 'upgrade', mt.tier_id, a.balance, 'demo', %s
                FROM members_membertier mt
                JOIN members_pointsaccount a ON a.member_id = mt.member_id AND a.kind = 'growth'
                """,
                [now],
            )
    return f"4 tiers, 4 coupon templates, 4 rewards; {accounts} points accounts; {tiered} tiered"


def _seed_points(cursor: Any, now: datetime) -> int:
    """Growth = what each member's orders earned; activity = 100 on joining plus a bit."""
    cursor.execute(
        """
        INSERT INTO members_pointsaccount (member_id, kind, balance, updated_at)
        SELECT id, 'growth', floor(total_spent)::bigint, %(now)s FROM members_member
        WHERE merged_into_id IS NULL AND total_spent >= 1
        UNION ALL
        SELECT id, 'activity', 100 + (id %% 9) * 40, %(now)s FROM members_member
        WHERE merged_into_id IS NULL AND member_since IS NOT NULL
        """,
        {"now": now},
    )
    accounts = cursor.rowcount
    cursor.execute(
        """
        INSERT INTO members_ledgerentry (account_id, kind, amount, balance_after, source,
            external_id, reason, created_at)
        SELECT id, 'earn', balance, balance, 'demo', kind || ':' || member_id,
               CASE kind WHEN 'growth' THEN '历史订单' ELSE '注册及互动' END, %s
        FROM members_pointsaccount
        """,
        [now],
    )
    cursor.execute(
        """
        INSERT INTO members_pointslot (account_id, entry_id, amount, remaining, expires_at)
        SELECT e.account_id, e.id, e.amount, e.amount,
               CASE a.kind WHEN 'activity'
                    THEN %s + make_interval(days => (20 + a.member_id %% 340)::int) END
        FROM members_ledgerentry e JOIN members_pointsaccount a ON a.id = e.account_id
        """,
        [now],
    )
    return accounts


DEMO_TAGS = [
    # group, single choice?, tags
    ("兴趣", False, ["瑜伽", "护肤", "跑步", "咖啡", "烘焙"]),
    ("人生阶段", True, ["学生", "职场新人", "孕期", "宝妈（0-1岁）", "宝妈（1-3岁）"]),
    ("肤质", True, ["油性", "干性", "混合", "敏感"]),
    ("消费偏好", False, ["价格敏感", "新品尝鲜", "高客单"]),
]


@demo_step(order=40)
def seed_tags_and_segments(ctx: DemoContext) -> str:
    """Tag groups and tags, about a third of the members tagged (one tag per
    single-choice group), a few segments, and RFM facts with their cut points."""
    from members.models import Segment, Tag, TagChoice, TagGroup
    from members.services.rfm import rfm_full_recompute, rfm_nightly
    from members.services.segments import segment_record_size

    if TagGroup.objects.exists():
        return "tags already present; none added"
    now = timezone.now()
    with transaction.atomic():
        for position, (group_name, single, names) in enumerate(DEMO_TAGS):
            group = TagGroup.objects.create(
                name=group_name,
                choice=TagChoice.SINGLE if single else TagChoice.MULTIPLE,
                position=position,
            )
            for name in names:
                Tag.objects.create(group=group, name=name)
        with connection.cursor() as cursor:
            # Multiple-choice groups: each member gets each tag with a small chance.
            # Single-choice groups: about a third of members get exactly one of the group's.
            cursor.execute(
                """
                INSERT INTO members_membertag (member_id, tag_id, source, source_ref, added_at)
                SELECT m.id, t.id, 'import', 'demo', %(now)s
                FROM members_member m JOIN members_tag t ON true
                JOIN members_taggroup g ON g.id = t.group_id AND g.choice = 'multiple'
                WHERE m.merged_into_id IS NULL AND random() < 0.12
                """,
                {"now": now},
            )
            cursor.execute(
                """
                INSERT INTO members_membertag (member_id, tag_id, source, source_ref, added_at)
                SELECT picked.member_id, picked.tag_id, 'import', 'demo', %(now)s
                FROM (
                    SELECT m.id AS member_id, g.id AS group_id,
                           (array_agg(t.id ORDER BY t.id))[1 + floor(random() * count(t.id))::int]
                               AS tag_id
                    FROM members_member m CROSS JOIN members_taggroup g
                    JOIN members_tag t ON t.group_id = g.id
                    WHERE g.choice = 'single' AND m.merged_into_id IS NULL AND random() < 0.33
                    GROUP BY m.id, g.id
                ) picked
                """,
                {"now": now},
            )
            cursor.execute(
                "INSERT INTO members_membertaglog "
                "(member_id, tag_id, action, source, source_ref, at) "
                "SELECT member_id, tag_id, 'add', source, source_ref, added_at "
                "FROM members_membertag"
            )
        tagged = Tag.objects.get(name="宝妈（0-1岁）").pk
        coffee = Tag.objects.get(name="咖啡").pk
        segments = [
            Segment(
                name="宝妈且近90天购买≥2次",
                description="母婴人群中的活跃买家",
                rules={
                    "op": "and",
                    "rules": [
                        {"field": "tags", "operator": "any", "value": [tagged]},
                        {"field": "order_count", "operator": "gte", "value": 2, "days": 90},
                    ],
                },
            ),
            Segment(
                name="60天未购买的女性会员",
                description="流失预警：女性、有过购买、近60天没有下单",
                rules={
                    "op": "and",
                    "rules": [
                        {"field": "gender", "operator": "in", "value": ["f"]},
                        {"field": "order_count", "operator": "gte", "value": 1},
                        {"field": "last_purchase", "operator": "not_within_days", "value": 60},
                    ],
                },
            ),
            Segment(
                name="重要价值客户",
                rules={
                    "op": "and",
                    "rules": [{"field": "rfm_class", "operator": "in", "value": ["HHH"]}],
                },
            ),
            Segment(
                name="咖啡爱好者（非上海）",
                rules={
                    "op": "and",
                    "rules": [
                        {"field": "tags", "operator": "any", "value": [coffee]},
                        {
                            "op": "not",
                            "rules": [{"field": "city", "operator": "in", "value": ["上海"]}],
                        },
                    ],
                },
            ),
        ]
        Segment.objects.bulk_create(segments)
    buyers = rfm_full_recompute(now=now)
    rfm_nightly(now=now)
    for segment in Segment.objects.all():
        segment_record_size(segment=segment, now=now)
    tags = Tag.objects.count()
    return f"{tags} tags, {len(segments)} segments, RFM facts for {buyers} buyers"


DEMO_CYCLES = [
    ("", "洁面", 60),
    ("", "面膜", 30),
    ("", "奶粉", 20),
    ("", "纸尿裤", 14),
    ("", "食品", 30),
    ("SK-A004", "", 90),
]
DEMO_NOTES = [
    ("visit", "到店试用了修护精华，说下次活动再买"),
    ("wechat", "咨询宝宝奶粉转段，已发送转段指南"),
    ("call", "回访面霜使用感受，反馈很滋润，推荐了同系列眼霜"),
    ("note", "对香精敏感，推荐无香款"),
]


@demo_step(order=50)
def seed_guides(ctx: DemoContext) -> str:
    """Guide history for the customers guides already serve, repurchase cycles, a few
    service notes, and follow-up tasks from the real sweeps (plus HQ tasks for the demo
    guide, some due today and some overdue, so /m/ has work on it)."""
    from datetime import timedelta

    from members.models import (
        FollowUpTask,
        GuideAssignment,
        RepurchaseCycle,
        ServiceNote,
        TaskKind,
    )
    from members.services.followups import followups_daily, followups_welcome
    from scrm.org.models import Staff

    if GuideAssignment.objects.exists():
        return "guide history already present; none added"
    now = timezone.now()
    today = timezone.localdate(now)
    with transaction.atomic():
        RepurchaseCycle.objects.bulk_create(
            RepurchaseCycle(sku=sku, category=category, days=days)
            for sku, category, days in DEMO_CYCLES
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO members_guideassignment "
                "(member_id, to_guide_id, store_id, reason, note, created_at) "
                "SELECT id, guide_id, home_store_id, 'import', '', created_at "
                "FROM members_member WHERE guide_id IS NOT NULL AND merged_into_id IS NULL"
            )
            assigned = cursor.rowcount
        guide = Staff.objects.filter(username="guide").first()
        notes = 0
        if guide is not None:
            customers = list(guide.customers.filter(merged_into__isnull=True).order_by("pk")[:12])
            for index, member in enumerate(customers):
                kind, body = DEMO_NOTES[index % len(DEMO_NOTES)]
                ServiceNote.objects.create(
                    member=member,
                    author=guide,
                    kind=kind,
                    body=body,
                    created_at=now - timedelta(days=index * 3 + 1),
                )
                notes += 1
            FollowUpTask.objects.bulk_create(
                FollowUpTask(
                    member=member,
                    guide=guide,
                    kind=TaskKind.HQ,
                    title=title,
                    detail="总部会员日活动，邀请到店领取礼品",
                    due_on=today + timedelta(days=offset),
                )
                for member, (title, offset) in zip(
                    customers[:4],
                    [
                        ("会员日到店邀约", 0),
                        ("会员日到店邀约", 0),
                        ("新品试用回访", -2),
                        ("新品试用回访", 3),
                    ],
                    strict=False,
                )
            )
    counts = followups_daily(today=today)
    welcome = followups_welcome(now=now)
    made = sum(counts.values()) + welcome
    return f"{assigned} guide assignments, {notes} notes, {made} follow-up tasks from the sweeps"
