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
                              'sign_in','comment','follow'])[1 + floor(random() * 8)::int],
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
    return f"{len(channels)} channels, {Touchpoint.objects.count()} touchpoints, {events} events"
