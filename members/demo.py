"""Demo members: realistic Chinese names, phones, birthdays and stores, loaded with COPY."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone

from members.models import Gender, LifecycleStage, Member
from members.services import member_bulk_load
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
            demo_phone(index),
            store.city,
            store.pk,
            guide_id,
            stage,
            channel,
            created,
            created,
        )


@demo_step(order=20)
def seed_members(ctx: DemoContext) -> str:
    existing = Member.objects.count()
    if existing >= ctx.members:
        return f"{existing} members already in the pool; none added"
    rows = member_rows(
        start=existing,
        stop=ctx.members,
        stores=ctx.data["stores"],
        guides_by_store=ctx.data["guides_by_store"],
        seed=ctx.seed,
        now=timezone.now(),
    )
    added = member_bulk_load(rows=rows)
    return f"{added} members added ({existing + added} in the pool)"
