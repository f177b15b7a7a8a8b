"""Control groups (issue 10): a broadcast holds back exactly its share of the members it
would send to, drawn at random after suppression — never sent, never counted by a cap,
never credited with an order — and a campaign draws its share of those entering, whose
waves hold them out. The share and the cost are set on the forms, checked, and refused
with nothing saved."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import (
    Broadcast,
    Campaign,
    Conversion,
    Delivery,
    FrequencyRule,
    InboxMessage,
    JourneyEnrollment,
    Material,
    SandboxCall,
)
from campaigns.services.attribution import attribution_refresh
from campaigns.services.broadcasts import broadcast_cancel, broadcast_create
from campaigns.services.journeys import (
    StepSpec,
    campaign_activate,
    campaign_create,
    campaign_step_figures,
    campaign_update,
    journeys_advance,
    journeys_enroll,
)
from campaigns.services.planning import broadcast_plan, broadcast_preview
from campaigns.services.sending import broadcast_sweep, send_chunk
from members.models import Identity, Member, Segment
from members.services.errors import MemberError
from scrm.core.pii import phone_digest
from tests.conftest import Org
from tests.members.factories import IdentityFactory, MemberFactory, OrderFactory

EVERYONE = {
    "op": "and",
    "rules": [{"field": "gender", "operator": "in", "value": ["f", "m", "u"]}],
}
# Mid-morning local time: outside the quiet hours.
NOW = timezone.localtime().replace(hour=10, minute=0, second=0, microsecond=0)


def many_members(org: Org, n: int, **fields: Any) -> list[Member]:
    members = Member.objects.bulk_create(MemberFactory.build_batch(n, home_store=org.a1, **fields))
    Identity.objects.bulk_create(
        IdentityFactory.build(member=m, kind="phone", value=phone_digest(f"+86136{m.pk:08d}"))
        for m in members
    )
    return members


def make_broadcast(org: Org, channel: str = "sms", holdout: int = 0, **kw: Any) -> Broadcast:
    return Broadcast.objects.create(
        name=kw.pop("name", "会员日"),
        channel=channel,
        material=Material.objects.create(kind="text", title="会员日", body="{name}，会员日快乐"),
        segment=Segment.objects.create(name="全部", rules=EVERYONE),
        created_by=org.hq_operator,
        status=kw.pop("status", "approved"),
        holdout_percent=holdout,
        **kw,
    )


def statuses(broadcast: Broadcast) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Delivery.objects.filter(broadcast=broadcast).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


# --- broadcasts ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_tenth_of_a_thousand_is_held_out_never_sent_and_never_drawn_twice(org: Org) -> None:
    many_members(org, 1000)  # the fixture's five have no phone: not eligible by SMS
    broadcast = make_broadcast(org, holdout=10)
    preview = broadcast_preview(broadcast=broadcast)
    assert (preview.audience, preview.to_send, preview.held_out) == (1005, 900, 100)
    assert preview.suppressed == {"no_identity": 5}

    planned_at = timezone.now()
    plan = broadcast_plan(broadcast=broadcast, now=planned_at)
    assert (plan.audience, plan.to_send, plan.held_out) == (1005, 900, 100)
    assert plan.suppressed == {"no_identity": 5}
    assert statuses(broadcast) == {"planned": 900, "held_out": 100, "suppressed": 5}
    held = Delivery.objects.filter(broadcast=broadcast, status="held_out")
    assert set(held.values_list("sent_at", "reason", "attempts")) == {(planned_at, "", 0)}
    held_members = set(held.values_list("member_id", flat=True))
    # Nobody suppressed is drawn: the control group comes from those who would be sent.
    assert not held_members & set(
        Delivery.objects.filter(broadcast=broadcast, status="suppressed").values_list(
            "member_id", flat=True
        )
    )
    # Planning again adds nothing and draws nobody again.
    again = broadcast_plan(broadcast=broadcast, now=planned_at + timedelta(minutes=1))
    assert (again.to_send, again.held_out) == (900, 100)
    assert set(held.values_list("member_id", flat=True)) == held_members

    stats = send_chunk(broadcast_id=broadcast.pk, low=0, high=2**62)
    assert stats.sent == 900
    assert statuses(broadcast) == {"sent": 900, "held_out": 100, "suppressed": 5}
    called = set(
        SandboxCall.objects.filter(key__startswith=f"b{broadcast.pk}:").values_list(
            "member_id", flat=True
        )
    )
    assert len(called) == SandboxCall.objects.count() == 900
    assert not called & held_members
    assert set(held.values_list("sent_at", flat=True)) == {planned_at}  # untouched

    # The sweeper finds nothing to re-send and closes the broadcast; cancelling is refused
    # and the control group stays as it is.
    assert broadcast_sweep(now=timezone.now() + timedelta(minutes=5)) == 0
    broadcast.refresh_from_db()
    assert broadcast.status == "done"
    with pytest.raises(MemberError):
        broadcast_cancel(broadcast=broadcast, actor=org.hq_admin)
    assert statuses(broadcast) == {"sent": 900, "held_out": 100, "suppressed": 5}


@pytest.mark.django_db(transaction=True)
def test_held_out_rows_count_towards_no_cap(org: Org) -> None:
    # The default cap (a transactional test flushes the migration's row): one marketing
    # message a day across channels.
    FrequencyRule.objects.update_or_create(channel="", defaults={"per_day": 1, "per_month": 4})
    members = many_members(org, 4)
    first = make_broadcast(org, holdout=50, name="第一")
    broadcast_plan(broadcast=first)
    assert statuses(first) == {"held_out": 2, "planned": 2, "suppressed": 5}
    held = set(
        Delivery.objects.filter(broadcast=first, status="held_out").values_list(
            "member_id", flat=True
        )
    )
    send_chunk(broadcast_id=first.pk, low=0, high=2**62)

    # A second broadcast today: those sent the first are capped, the control group is not
    # (they got no message) — at planning and again at sending.
    second = make_broadcast(org, name="第二")
    assert broadcast_preview(broadcast=second).suppressed == {
        "frequency_cap": 2,
        "no_identity": 5,
    }
    broadcast_plan(broadcast=second)
    planned = Delivery.objects.filter(broadcast=second, status="planned")
    assert set(planned.values_list("member_id", flat=True)) == held
    assert send_chunk(broadcast_id=second.pk, low=0, high=2**62).sent == 2
    assert (
        set(
            Delivery.objects.filter(broadcast=second, status="sent").values_list(
                "member_id", flat=True
            )
        )
        == held
    )
    assert {m.pk for m in members} >= held


@pytest.mark.django_db
def test_held_out_deliveries_never_convert(org: Org) -> None:
    now = timezone.now()
    broadcast = make_broadcast(org, holdout=50, status="done")
    control, reached = org.member_of_guide_a1, org.member_b1
    for member, status in ((control, "held_out"), (reached, "sent")):
        Delivery.objects.create(
            broadcast=broadcast,
            member=member,
            channel="sms",
            send_day=timezone.localdate(now),
            status=status,
            sent_at=now - timedelta(days=1),
        )
    control_order = OrderFactory(member=control, paid_at=now - timedelta(hours=2))
    reached_order = OrderFactory(member=reached, paid_at=now - timedelta(hours=2))

    assert attribution_refresh().converted == 1
    assert list(Conversion.objects.values_list("order_id", "broadcast_id")) == [
        (reached_order.pk, broadcast.pk)
    ]
    assert not Conversion.objects.filter(order=control_order).exists()


@pytest.mark.django_db
def test_guide_posted_broadcasts_have_no_control_group(org: Org) -> None:
    segment = Segment.objects.create(name="全部", rules=EVERYONE)
    for channel in ("wecom_groups", "wecom_moments"):
        with pytest.raises(MemberError) as exc:
            broadcast_create(
                actor=org.hq_operator,
                name="朋友圈",
                channel=channel,
                segment=None,
                store=None,
                title="新品",
                body="新品到店",
                holdout_percent=10,
            )
        assert exc.value.code == "holdout_guide_posted"
    for bad, code in (
        ({"holdout_percent": 51}, "holdout_percent"),
        ({"cost": Decimal("-1")}, "cost"),
    ):
        with pytest.raises(MemberError) as exc:
            broadcast_create(
                actor=org.hq_operator,
                name="会员日",
                channel="sms",
                segment=segment,
                store=None,
                title="会员日",
                body="会员日",
                **bad,
            )
        assert exc.value.code == code
    assert (Broadcast.objects.count(), Material.objects.count()) == (0, 0)


# --- the broadcast form -------------------------------------------------------------------


@pytest.fixture
def en(client: Client) -> Client:
    client.cookies["scrm_language"] = "en"
    return client


def compose(client: Client, segment: Segment, **extra: Any) -> Any:
    data = {
        "name": "会员日",
        "channel": "inbox",
        "segment": segment.pk,
        "title": "会员日",
        "body": "{name}，会员日双倍积分",
        "scheduled_at": "",
        "store": "",
        "holdout_percent": "20",
        "cost": "1200.50",
        **extra,
    }
    return client.post("/hq/broadcasts/new/", data)


@pytest.mark.django_db
def test_the_broadcast_form_saves_the_share_and_cost_and_the_page_says_who_is_held_out(
    en: Client, org: Org
) -> None:
    segment = Segment.objects.create(name="全部", rules=EVERYONE)
    en.force_login(org.hq_operator)
    form = en.get("/hq/broadcasts/new/").content.decode()
    assert 'name="holdout_percent"' in form and 'name="cost"' in form
    assert compose(en, segment).status_code == 302
    broadcast = Broadcast.objects.get()
    assert (broadcast.holdout_percent, broadcast.cost) == (20, Decimal("1200.50"))
    page = en.get(f"/hq/broadcasts/{broadcast.pk}/").content.decode()
    # Five members by inbox: one (20 %) goes to the control group, four receive it.
    assert "<b>4</b> will receive it" in page
    assert "1 member goes to the control group (20 %)" in page
    # Empty fields mean no control group and no cost.
    assert compose(en, segment, holdout_percent="", cost="", name="无对照").status_code == 302
    plain = Broadcast.objects.get(name="无对照")
    assert (plain.holdout_percent, plain.cost) == (0, Decimal("0"))
    assert (
        'data-testid="preview-control"'
        not in en.get(f"/hq/broadcasts/{plain.pk}/").content.decode()
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"holdout_percent": "51"}, "The control group is at most 50 % of the audience."),
        ({"holdout_percent": "-1"}, "The control group cannot be below 0 %."),
        ({"holdout_percent": "ten"}, "Give the control group as a whole percentage"),
        ({"cost": "-0.01"}, "The cost cannot be negative."),
        ({"cost": "1.234"}, "at most 2 decimals"),
        ({"cost": "lots"}, "Give the cost as an amount in yuan"),
        (
            {"channel": "wecom_moments", "holdout_percent": "10"},
            "Customer groups and Moments have no control group",
        ),
    ],
)
def test_bad_shares_and_costs_are_refused_and_nothing_is_saved(
    en: Client, org: Org, extra: dict[str, str], message: str
) -> None:
    segment = Segment.objects.create(name="全部", rules=EVERYONE)
    en.force_login(org.hq_operator)
    response = compose(en, segment, **extra)
    assert response.status_code == 200 and message in response.content.decode()
    assert (Broadcast.objects.count(), Material.objects.count()) == (0, 0)


# --- journeys -----------------------------------------------------------------------------


def make_campaign(org: Org, holdout: int, steps: list[StepSpec] | None = None) -> Campaign:
    campaign = campaign_create(
        actor=org.hq_operator,
        template_key="welcome",
        name="欢迎",
        goal="",
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW + timedelta(days=60),
        holdout_percent=holdout,
        cost=Decimal("800.00"),
        steps=steps,
        now=NOW,
    )
    return campaign_activate(campaign=campaign, actor=org.hq_admin, now=NOW)


@pytest.mark.django_db
def test_a_quarter_of_those_entering_are_control_and_their_waves_hold_them_out(
    org: Org,
) -> None:
    steps = [
        StepSpec(1, "send", "inbox", title="欢迎", body="{name}，欢迎"),
        StepSpec(2, "wait", wait_hours=24),
        StepSpec(3, "branch", condition="opened", yes_position=4, no_position=5),
        StepSpec(4, "end"),
        StepSpec(5, "send", "inbox", title="提醒", body="别忘了"),
    ]
    campaign = make_campaign(org, 25, steps)
    assert (campaign.holdout_percent, campaign.cost) == (25, Decimal("800.00"))
    many_members(org, 200, member_since=NOW + timedelta(minutes=1))
    assert journeys_enroll(now=NOW + timedelta(minutes=5)) == 200
    enrollments = JourneyEnrollment.objects.filter(campaign=campaign)
    control = set(enrollments.filter(control=True).values_list("member_id", flat=True))
    assert (len(control), enrollments.filter(control=False).count()) == (50, 150)

    t1 = NOW + timedelta(minutes=6)
    assert journeys_advance(now=t1).sent_to_waves == 200  # the control group walks too
    wave = Broadcast.objects.get(journey_step__campaign=campaign, journey_step__position=1)
    rows = Delivery.objects.filter(broadcast=wave)
    assert statuses(wave) == {"planned": 150, "held_out": 50}
    held = rows.filter(status="held_out")
    assert set(held.values_list("member_id", flat=True)) == control
    assert set(held.values_list("sent_at", flat=True)) == {t1}
    assert send_chunk(broadcast_id=wave.pk, low=0, high=2**62, now=t1).sent == 150
    assert statuses(wave) == {"sent": 150, "held_out": 50}
    inboxed = set(InboxMessage.objects.values_list("member_id", flat=True))
    assert len(inboxed) == 150 and not inboxed & control
    figures = {f.step.position: f for f in campaign_step_figures(campaign)}
    assert (figures[1].entered, figures[1].sent, figures[1].held_out) == (200, 150, 50)

    # Everyone sent reads it; the control group has nothing to open: "no" for them.
    InboxMessage.objects.update(created_at=t1, read_at=t1 + timedelta(hours=1))
    later = NOW + timedelta(days=2)
    journeys_advance(now=later)
    reminder = Broadcast.objects.get(journey_step__campaign=campaign, journey_step__position=5)
    assert statuses(reminder) == {"held_out": 50}
    assert (
        set(Delivery.objects.filter(broadcast=reminder).values_list("member_id", flat=True))
        == control
    )
    assert enrollments.filter(state="completed").count() == 200


@pytest.mark.django_db
def test_without_a_share_nobody_is_control(org: Org) -> None:
    campaign = make_campaign(org, 0)
    many_members(org, 40, member_since=NOW + timedelta(minutes=1))
    assert journeys_enroll(now=NOW + timedelta(minutes=5)) == 40
    assert not JourneyEnrollment.objects.filter(campaign=campaign, control=True).exists()


@pytest.mark.django_db
def test_campaign_share_and_cost_are_checked_on_create_and_update(org: Org) -> None:
    for bad, code in (
        ({"holdout_percent": 51}, "holdout_percent"),
        ({"holdout_percent": -1}, "holdout_percent"),
        ({"cost": Decimal("-0.01")}, "cost"),
        ({"cost": Decimal("0.001")}, "cost"),
    ):
        with pytest.raises(MemberError) as exc:
            campaign_create(
                actor=org.hq_operator,
                template_key="welcome",
                name="欢迎",
                goal="",
                starts_at=NOW,
                ends_at=NOW + timedelta(days=3),
                now=NOW,
                **bad,
            )
        assert exc.value.code == code
    assert not Campaign.objects.exists() and not Material.objects.exists()

    campaign = campaign_create(
        actor=org.hq_operator,
        template_key="welcome",
        name="欢迎",
        goal="",
        starts_at=NOW,
        ends_at=NOW + timedelta(days=3),
        now=NOW,
    )
    settings: dict[str, Any] = {
        "name": campaign.name,
        "goal": "",
        "segment": None,
        "store": None,
        "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at,
        "trigger": campaign.trigger,
        "trigger_params": campaign.trigger_params,
        "exit_on_conversion": campaign.exit_on_conversion,
        "exit_tag": None,
        "now": NOW,
    }
    campaign_update(
        campaign=campaign,
        actor=org.hq_operator,
        holdout_percent=15,
        cost=Decimal("99.90"),
        **settings,
    )
    campaign.refresh_from_db()
    assert (campaign.holdout_percent, campaign.cost) == (15, Decimal("99.90"))
    before = Campaign.objects.values().get(pk=campaign.pk)
    with pytest.raises(MemberError):
        campaign_update(campaign=campaign, actor=org.hq_operator, holdout_percent=60, **settings)
    assert Campaign.objects.values().get(pk=campaign.pk) == before
    # Not given: kept.
    campaign_update(campaign=campaign, actor=org.hq_operator, **settings)
    campaign.refresh_from_db()
    assert (campaign.holdout_percent, campaign.cost) == (15, Decimal("99.90"))


def _local(moment: Any) -> str:
    return str(timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M"))


def campaign_form(**extra: Any) -> dict[str, Any]:
    now = timezone.now()
    data: dict[str, Any] = {
        "template": "welcome",
        "name": "新会员欢迎",
        "goal": "",
        "segment": "",
        "store": "",
        "starts_at": _local(now),
        "ends_at": _local(now + timedelta(days=30)),
        "trigger": "registered",
        "days_before": "",
        "days": "",
        "hours": "",
        "exit_tag": "",
        "holdout_percent": "10",
        "cost": "500",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "30",
        "steps-0-kind": "send",
        "steps-0-channel": "inbox",
        "steps-0-title": "欢迎",
        "steps-0-body": "{name}，欢迎！",
    }
    data.update(extra)
    return data


@pytest.mark.django_db
def test_the_campaign_pages_save_the_share_and_cost_and_refuse_bad_ones(
    en: Client, org: Org
) -> None:
    en.force_login(org.hq_operator)
    assert (
        'name="holdout_percent"' in en.get("/hq/campaigns/new/?template=welcome").content.decode()
    )
    for extra, message in (
        ({"holdout_percent": "51"}, "The control group is at most 50 % of the audience."),
        ({"holdout_percent": "-5"}, "The control group cannot be below 0 %."),
        ({"cost": "-1"}, "The cost cannot be negative."),
        ({"cost": "12.345"}, "at most 2 decimals"),
    ):
        response = en.post("/hq/campaigns/new/", campaign_form(**extra))
        assert response.status_code == 400 and message in response.content.decode()
        assert (Campaign.objects.count(), Material.objects.count()) == (0, 0)

    assert en.post("/hq/campaigns/new/", campaign_form()).status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.holdout_percent, campaign.cost) == (10, Decimal("500.00"))

    url = f"/hq/campaigns/{campaign.pk}/edit/"
    edit = en.get(url).content.decode()
    assert 'name="holdout_percent" value="10"' in edit and 'value="500.00"' in edit
    settings = {
        k: v for k, v in campaign_form().items() if not k.startswith("steps-") and k != "template"
    }
    before = Campaign.objects.values().get(pk=campaign.pk)
    for extra, message in (
        ({"holdout_percent": "80"}, "The control group is at most 50 % of the audience."),
        ({"cost": "-3"}, "The cost cannot be negative."),
    ):
        response = en.post(url, {**settings, **extra})
        assert response.status_code == 400 and message in response.content.decode()
        assert Campaign.objects.values().get(pk=campaign.pk) == before
    assert en.post(url, {**settings, "holdout_percent": "30", "cost": "0"}).status_code == 302
    campaign.refresh_from_db()
    assert (campaign.holdout_percent, campaign.cost) == (30, Decimal("0.00"))
    detail = en.get(f"/hq/campaigns/{campaign.pk}/").content.decode()
    assert "control group 30 %" in detail
