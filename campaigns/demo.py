"""Demo data for the Reach pages: a material library with quick replies, broadcasts sent
by SMS and to the in-app inbox, a WeCom broadcast the demo guide still has to confirm, a
store's draft waiting for head office, the referral programme switched on, and journeys
from templates (two running, one draft)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from scrm.core.demo import DemoContext, demo_step

DEMO_MATERIALS = [
    # kind, title, body, image, link, mini-program page, quick reply
    (
        "text",
        "会员日提醒",
        "{name}，本周六会员日全场双倍积分，您现有 {points} 积分，期待您来店～",
        "",
        "",
        "",
        False,
    ),
    (
        "text",
        "到店欢迎",
        "{name}您好，我是您的专属导购{guide}，有任何需要随时找我～",
        "",
        "",
        "",
        True,
    ),
    (
        "text",
        "生日祝福",
        "{name}，生日快乐！{tier}专属生日礼已放入您的账户，记得到店领取哦。",
        "",
        "",
        "",
        True,
    ),
    (
        "text",
        "新品到店",
        "{name}，秋冬新品已到店，给您留了试穿名额，方便时回复我预约～",
        "",
        "",
        "",
        True,
    ),
    (
        "link",
        "秋冬新品图鉴",
        "精选 20 款秋冬新品，会员专享 9 折",
        "https://img.example.com/aw.jpg",
        "https://brand.example.com/aw",
        "",
        False,
    ),
    (
        "mini_program",
        "积分商城",
        "{points} 积分可兑换好礼",
        "https://img.example.com/mall.jpg",
        "",
        "pages/mall/index?from=broadcast",
        True,
    ),
]


@demo_step(order=80)
def seed_campaigns(ctx: DemoContext) -> str:
    from campaigns.gateways import close_outside_connection
    from campaigns.models import (
        Broadcast,
        BroadcastStatus,
        Delivery,
        Material,
        ReferralProgramme,
    )
    from campaigns.services.planning import broadcast_plan
    from campaigns.services.sending import send_chunk
    from members.models import Identity, Member, Segment
    from members.services.errors import MemberError
    from members.services.segments import segment_record_size
    from scrm.org.models import Staff

    if Material.objects.exists():
        return "campaigns already present; none added"
    operator = Staff.objects.filter(username="operator").first()
    manager = Staff.objects.filter(username="manager").first()
    admin = Staff.objects.filter(username="admin").first()
    guide = Staff.objects.filter(username="guide").first()
    if operator is None or admin is None:
        return "no staff to build campaigns with"
    now = timezone.now()
    with transaction.atomic():
        segment, _created = Segment.objects.get_or_create(
            name="全部会员",
            defaults={
                "description": "池中所有会员（群发演示用）",
                "rules": {
                    "op": "and",
                    "rules": [{"field": "gender", "operator": "in", "value": ["f", "m", "u"]}],
                },
                "created_by": operator,
            },
        )
        segment_record_size(segment=segment, now=now)
        materials = [
            Material.objects.create(
                kind=kind,
                title=title,
                body=body,
                image_url=image,
                link_url=link,
                mini_program_path=page,
                quick_reply=quick,
                created_by=operator,
            )
            for kind, title, body, image, link, page, quick in DEMO_MATERIALS
        ]
        # WeCom contacts for the demo guide's customers, so a WeCom broadcast reaches them.
        if guide is not None:
            Identity.objects.bulk_create(
                [
                    Identity(
                        member=member,
                        kind="wecom_external",
                        value=f"wmdemo{member.pk:08d}",
                        source="demo",
                    )
                    for member in Member.objects.filter(guide=guide, merged_into__isnull=True)
                ],
                ignore_conflicts=True,
            )
        sms = Broadcast.objects.create(
            name="双倍积分会员日 · 短信",
            channel="sms",
            material=materials[0],
            segment=segment,
            created_by=operator,
            approved_by=admin,
            status=BroadcastStatus.APPROVED,
        )
        inbox = Broadcast.objects.create(
            name="秋冬新品 · 站内信",
            channel="inbox",
            material=materials[4],
            segment=segment,
            created_by=operator,
            approved_by=admin,
            status=BroadcastStatus.APPROVED,
            holdout_percent=10,
            cost=Decimal("800.00"),
        )
        wecom = Broadcast.objects.create(
            name="新品到店 · 导购群发",
            channel="wecom",
            material=materials[3],
            segment=segment,
            created_by=operator,
            approved_by=admin,
            status=BroadcastStatus.APPROVED,
        )
        manager_store = manager.stores.order_by("pk").first() if manager is not None else None
        if manager_store is not None:
            Broadcast.objects.create(
                name="本店周末到店礼",
                channel="inbox",
                material=materials[1],
                segment=segment,
                store=manager_store,
                created_by=manager,
                status=BroadcastStatus.PENDING,
            )
        Broadcast.objects.create(
            name="年终回馈（草稿）",
            channel="sms",
            material=materials[2],
            segment=segment,
            created_by=operator,
        )
        programme = ReferralProgramme.current()
        programme.active = True
        programme.save(update_fields=["active"])
    planned = 0
    for broadcast in (wecom, inbox, sms):
        # A member gets one marketing message a day: the WeCom one goes first so the demo
        # guide has a group message to confirm.
        try:
            planned += broadcast_plan(broadcast=broadcast, now=now).to_send
        except MemberError:  # nobody to send to (an empty demo pool)
            continue
        ids = list(
            Delivery.objects.filter(broadcast=broadcast, status="planned").values_list(
                "pk", flat=True
            )
        )
        if ids:
            send_chunk(broadcast_id=broadcast.pk, low=min(ids), high=max(ids), now=now)
        Broadcast.objects.filter(pk=broadcast.pk).update(status=BroadcastStatus.DONE)
    journeys = _seed_journeys(operator, admin, now)
    close_outside_connection()  # the sandbox's own connection, not needed any more
    sent = Delivery.objects.filter(status="sent").count()
    return (
        f"{len(materials)} materials, 5 broadcasts, {sent} messages sent of {planned} "
        f"planned, {journeys} journeys"
    )


def _seed_journeys(operator: Any, admin: Any, now: datetime) -> int:
    """Three campaigns from templates: a welcome and a birthday journey running for the
    next three months, and a win-back draft."""
    from campaigns.services.journeys import campaign_activate, campaign_create

    made = 0
    for key, name, goal, activate in (
        ("welcome", "新会员欢迎旅程", "新会员一周内完成首单", True),
        ("birthday", "会员生日关怀", "生日当月到店或下单", True),
        ("win_back", "沉睡会员唤醒（草稿）", "60 天未购买的会员回购", False),
    ):
        campaign = campaign_create(
            actor=operator,
            template_key=key,
            name=name,
            goal=goal,
            starts_at=now,
            ends_at=now + timedelta(days=90),
            now=now,
        )
        if activate:
            campaign_activate(campaign=campaign, actor=admin, now=now)
        made += 1
    return made


@demo_step(order=85)
def seed_funnel(ctx: DemoContext) -> str:
    """The demo broadcasts went out three days ago: a third of the inbox recipients opened
    theirs and some followed the link; one in twelve recipients bought since (their orders
    recorded through the order service, so stats, points and tiers follow); then
    attribution and the funnel are brought up to date, as the beat would."""
    from campaigns.models import Broadcast, Delivery
    from campaigns.services.attribution import attribution_refresh
    from campaigns.services.funnel import funnel_refresh
    from members.models import Order
    from members.services.orders import order_record

    demo = Broadcast.objects.filter(journey_step__isnull=True, status="done")
    if not demo.exists() or Order.objects.filter(external_id__startswith="FUNNEL-").exists():
        return "no demo broadcasts, or their funnel is already there"
    now = timezone.now()
    sent_at = now - timedelta(days=3)
    deliveries = Delivery.objects.filter(broadcast__in=demo, status="sent")
    # Buyers come from those sent and from the control group alike (uplift is the gap).
    reached = Delivery.objects.filter(broadcast__in=demo, status__in=("sent", "held_out"))
    Delivery.objects.filter(broadcast__in=demo, sent_at__isnull=False).update(sent_at=sent_at)
    Broadcast.objects.filter(pk__in=demo).update(planned_at=sent_at)
    inbox = deliveries.filter(channel="inbox").order_by("pk")
    opened = list(inbox.values_list("pk", flat=True)[::3])
    Delivery.objects.filter(pk__in=opened).update(opened_at=sent_at + timedelta(hours=2))
    Delivery.objects.filter(pk__in=opened[::4]).update(clicked_at=sent_at + timedelta(hours=2))
    buyers = 0
    for number, delivery in enumerate(
        reached.select_related("member__home_store").order_by("pk")[::12]
    ):
        member = delivery.member
        order_record(
            channel="store",
            external_id=f"FUNNEL-{number:05d}",
            member=member,
            paid_at=sent_at + timedelta(hours=20 + number % 48),
            amount=Decimal(199 + (number * 37) % 600),
            store=member.home_store,
        )
        buyers += 1
    attribution = attribution_refresh()
    funnel = funnel_refresh()
    return (
        f"{len(opened)} opened, {buyers} bought, {attribution.converted} orders converted, "
        f"{funnel.rows} funnel rows"
    )


# Consent decisions of the demo guide's customers, oldest first: (customer index, purpose,
# granted, source, channel, days ago). Some withdrawals, so suppression and the ledger
# show; the SMS withdrawals came as replies and from unsubscribe links.
DEMO_CONSENTS = [
    (0, "marketing_sms", True, "mini_program", "mini_program", 80),
    (0, "profiling", True, "mini_program", "mini_program", 80),
    (0, "marketing_sms", False, "sms_reply", "sms", 12),
    (1, "marketing_inbox", True, "mini_program", "mini_program", 70),
    (1, "marketing_inbox", False, "unsubscribe_link", "inbox", 9),
    (1, "marketing_wecom", True, "guide", "store", 60),
    (2, "marketing_wecom", True, "guide", "wecom", 55),
    (2, "marketing_sms", True, "guide", "store", 55),
    (2, "profiling", False, "mini_program", "mini_program", 20),
    (3, "marketing_sms", True, "hq", "paper", 45),
    (3, "marketing_sms", False, "unsubscribe_link", "sms", 4),
    (4, "marketing_subscription", True, "mini_program", "mini_program", 30),
    (4, "profiling", True, "guide", "store", 30),
    (5, "marketing_wecom", False, "guide", "phone", 15),
    (6, "marketing_sms", True, "mini_program", "mini_program", 40),
    (6, "marketing_inbox", True, "mini_program", "mini_program", 40),
    (6, "profiling", True, "mini_program", "mini_program", 40),
    (7, "marketing_sms", False, "sms_reply", "sms", 2),
]
# A child of the demo guide's customers: the guardian consented in store.
DEMO_CHILD_CONSENTS = [
    ("sensitive", True, "guide", "store", 25),
    ("profiling", True, "guide", "store", 25),
    ("marketing_inbox", True, "guide", "store", 25),
]


@demo_step(order=78)
def seed_consents(ctx: DemoContext) -> str:
    """Consent decisions of the demo guide's customers across purposes, sources and
    channels (withdrawals included), and one customer under 14 whose guardian consented
    — recorded through the consent service, before the demo broadcasts are planned."""
    from datetime import date

    from campaigns.models import ConsentEntry
    from campaigns.services.consent import consent_record
    from members.models import Member
    from scrm.org.models import Staff

    if ConsentEntry.objects.exists():
        return "consent decisions already present; none added"
    guide = Staff.objects.filter(username="guide").first()
    operator = Staff.objects.filter(username="operator").first()
    if guide is None:
        return "no demo guide: no consent decisions"
    # The demo guide's own customers first, then others of their store (a small demo).
    store_members = Member.objects.filter(home_store__in=guide.stores.all())
    customers = list(store_members.filter(guide=guide).order_by("pk")[:9])
    customers += store_members.exclude(guide=guide).order_by("pk")[: 9 - len(customers)]
    if len(customers) < 9:
        return "too few members at the demo guide's store: no consent decisions"
    now = timezone.now()
    assisted = {"guide": guide, "hq": operator}
    with transaction.atomic():
        for index, purpose, granted, source, channel, days in DEMO_CONSENTS:
            consent_record(
                member=customers[index],
                purpose=purpose,
                granted=granted,
                source=source,
                channel=channel,
                assisted_by=assisted.get(source),
                note="纸质同意书 2026-0117" if source == "hq" else "",
                now=now - timedelta(days=days),
            )
        child = customers[8]
        today = timezone.localdate()
        child.birthday = date(today.year - 10, 6, 1)
        child.save(update_fields=["birthday", "updated_at"])
        for purpose, granted, source, channel, days in DEMO_CHILD_CONSENTS:
            consent_record(
                member=child,
                purpose=purpose,
                granted=granted,
                source=source,
                channel=channel,
                assisted_by=guide,
                note="监护人（母亲）到店签署",
                now=now - timedelta(days=days),
            )
    entries = len(DEMO_CONSENTS) + len(DEMO_CHILD_CONSENTS)
    return f"{entries} consent decisions for {len(customers)} customers, one of them under 14"
