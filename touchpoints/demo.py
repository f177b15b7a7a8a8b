"""Demo touchpoints: the usual channels, a channel QR code per store with its guides as the
rotation, a few head-office touchpoints, an event client, and a month of behaviour events."""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from scrm.core.demo import DemoContext, demo_step

DEMO_CHANNELS = [
    ("official_account", "品牌公众号", "official-account"),
    ("mini_program", "会员小程序", "mini-program"),
    ("wecom", "企业微信", "wecom"),
    ("store", "线下门店", "store"),
    ("tmall", "天猫旗舰店", "tmall"),
    ("jd", "京东自营", "jd"),
    ("douyin", "抖音直播间", "douyin"),
    ("meituan", "美团外卖", "meituan"),
    ("offline_event", "快闪活动", "offline-event"),
    ("advertising", "朋友圈广告", "advertising"),
]
HQ_TOUCHPOINTS = [
    ("official-account", "page", "公众号菜单「会员中心」", "oa-menu"),
    ("mini-program", "page", "小程序首页 Banner", "mp-banner"),
    ("douyin", "live_room", "抖音品牌直播间", "douyin-live"),
    ("advertising", "ad_slot", "朋友圈广告 · 新客礼", "moments-ad"),
    ("offline-event", "poster", "商场快闪海报", "popup-poster"),
]


@demo_step(order=60)
def seed_touchpoints(ctx: DemoContext) -> str:
    from members.models import Tag, TagChoice, TagGroup
    from scrm.org.models import Staff, Store
    from touchpoints.api.auth import key_hash
    from touchpoints.models import Channel, EventClient, QrCode, QrCodeGuide, Touchpoint

    if Channel.objects.exists():
        return "touchpoints already present; none added"
    now = timezone.now()
    with transaction.atomic():
        channels = {
            code: Channel.objects.create(kind=kind, name=name, code=code)
            for kind, name, code in DEMO_CHANNELS
        }
        for channel_code, kind, name, code in HQ_TOUCHPOINTS:
            Touchpoint.objects.create(
                channel=channels[channel_code], kind=kind, name=name, code=code
            )
        group, _created = TagGroup.objects.get_or_create(
            name="渠道来源", defaults={"choice": TagChoice.MULTIPLE, "position": 90}
        )
        scan_tag, _created = Tag.objects.get_or_create(group=group, name="门店活码扫码")
        for store in Store.objects.order_by("code"):
            touchpoint = Touchpoint.objects.create(
                channel=channels["wecom"],
                kind="qr_code",
                name=f"{store.name} · 收银台活码",
                code=f"qr-{store.code.lower()}",
                store=store,
            )
            qr = QrCode.objects.create(
                touchpoint=touchpoint,
                welcome_message=f"您好，欢迎来到{store.name}！我是您的专属顾问，有任何问题随时找我～",
            )
            qr.tags.add(scan_tag)
            guides = list(Staff.objects.guides().filter(stores=store).order_by("username"))
            QrCodeGuide.objects.bulk_create(
                QrCodeGuide(qr_code=qr, guide=guide, position=n, daily_cap=30)
                for n, guide in enumerate(guides)
            )
            Touchpoint.objects.create(
                channel=channels["store"],
                kind="store_counter",
                name=f"{store.name} · 收银台",
                code=f"counter-{store.code.lower()}",
                store=store,
            )
        # A known demo key (the demo is not production): README shows how to post with it.
        EventClient.objects.create(
            name="会员小程序后台",
            channel=channels["mini-program"],
            key_hash=key_hash("ek_demo_mini_program"),
            key_hint="gram",
        )
        with connection.cursor() as cursor:
            # About six events per member over the last 30 days, already applied.
            cursor.execute(
                """
                INSERT INTO touchpoints_behaviourevent
                    (client_event_id, member_id, type, occurred_at, received_at,
                     touchpoint_id, properties, applied_at)
                SELECT 'demo-' || m.id || '-' || n,
                       m.id,
                       (ARRAY['browse_product','browse_product','add_to_cart','share','like',
                              'sign_in','scan','follow','register','unfollow'])
                           [1 + floor(random() * 10)::int],
                       %(now)s - random() * interval '30 days',
                       %(now)s,
                       (SELECT id FROM touchpoints_touchpoint
                        ORDER BY id OFFSET (m.id + n) %% 7 LIMIT 1),
                       jsonb_build_object('sku', 'SK-A00' || (1 + (m.id + n) %% 6)),
                       %(now)s
                FROM members_member m CROSS JOIN generate_series(1, 6) AS n
                WHERE m.merged_into_id IS NULL AND random() < 0.8
                """,
                {"now": now},
            )
            events = cursor.rowcount
    from touchpoints.services.health import health_refresh

    days = health_refresh(days=31)
    return (
        f"{len(channels)} channels, {Touchpoint.objects.count()} touchpoints, {events} events, "
        f"{days} touchpoint-days of health figures"
    )


DEMO_CATEGORIES = [
    ("服务态度", "客服部"),
    ("产品质量", "品控部"),
    ("等待时间", "运营部"),
    ("价格与优惠", "市场部"),
    ("物流配送", "物流部"),
]
DEMO_COMMENTS = ["导购很热情", "排队太久了", "产品用着不错", "优惠券用不了", "快递太慢", ""]


@demo_step(order=70)
def seed_feedback(ctx: DemoContext) -> str:
    """An after-purchase NPS survey and a satisfaction survey, problem categories, answers
    to the invitations of the last weeks' orders, and the tickets the negative ones opened."""
    import random
    from datetime import timedelta

    from touchpoints.models import FeedbackCategory, Survey, SurveyInvitation, SurveyQuestion
    from touchpoints.services.feedback import survey_answer, surveys_invite_after_purchase

    if Survey.objects.exists():
        return "surveys already present; none added"
    rng = random.Random(ctx.seed + 70)
    now = timezone.now()
    with transaction.atomic():
        categories = [
            FeedbackCategory.objects.create(name=name, department=department)
            for name, department in DEMO_CATEGORIES
        ]
        nps = Survey.objects.create(
            name="购后推荐意愿（NPS）",
            kind="nps",
            trigger="after_purchase",
            question="您有多大可能把我们推荐给朋友？",
            comment_prompt="说说原因吧",
            delay_hours=24,
        )
        Survey.objects.create(
            name="门店服务满意度",
            kind="satisfaction",
            trigger="campaign",
            question="您对本次门店服务满意吗？",
        )
        bought_for = SurveyQuestion.objects.create(
            survey=nps,
            position=1,
            text="您这次主要买的是？",
            kind="choice",
            choices=["护肤", "母婴", "家居", "食品"],
        )
        invited = 0
        for days_ago in range(2, 16):
            invited += surveys_invite_after_purchase(now=now - timedelta(days=days_ago))
        answered = tickets = 0
        for invitation in SurveyInvitation.objects.order_by("pk"):
            if rng.random() > 0.6:
                continue
            score = rng.choice([10, 10, 9, 9, 9, 8, 8, 7, 6, 5, 3, 1])
            chosen = [rng.choice(categories).pk] if score <= 6 else []
            answer = survey_answer(
                invitation_id=invitation.pk,
                member_id=invitation.member_id,
                score=score,
                comment=rng.choice(DEMO_COMMENTS),
                category_ids=chosen,
                answers={bought_for.pk: rng.choice(bought_for.choices)},
                now=invitation.sent_at + timedelta(hours=rng.randint(1, 30)),
            )
            answered += 1
            tickets += answer.ticket is not None
    return f"{invited} survey invitations, {answered} answers, {tickets} tickets"
