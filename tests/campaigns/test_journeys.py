"""Journeys: triggers enroll exactly the right members, once at a time; advancing walks
send → wait → branch → send; exits; sends share caps and opt-outs with broadcasts and go
out exactly once through the day's wave."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.journey_templates import TEMPLATES
from campaigns.models import (
    Broadcast,
    Campaign,
    Delivery,
    FrequencyRule,
    InboxMessage,
    JourneyEnrollment,
    JourneyStep,
    JourneyVisit,
    MarketingOptOut,
    Material,
)
from campaigns.services.journeys import (
    StepSpec,
    _birthday_codes,
    campaign_activate,
    campaign_create,
    campaign_end,
    campaign_pause,
    campaign_step_figures,
    journeys_advance,
    journeys_enroll,
)
from campaigns.services.sending import send_chunk
from members.models import Member, MemberTag, Segment, TagSource, TierChange
from members.services.errors import MemberError
from tests.conftest import Org
from tests.members.factories import (
    IdentityFactory,
    MemberFactory,
    OrderFactory,
    TagFactory,
)
from touchpoints.models import BehaviourEvent

pytestmark = pytest.mark.django_db

# Mid-morning local time: outside the quiet hours.
NOW = timezone.localtime().replace(hour=10, minute=0, second=0, microsecond=0)
DAY = timedelta(days=1)


def make_campaign(
    org: Org, template: str = "welcome", *, activate: bool = True, **kw: Any
) -> Campaign:
    campaign = campaign_create(
        actor=kw.pop("actor", org.hq_operator),
        template_key=template,
        name=kw.pop("name", "旅程"),
        goal="",
        starts_at=kw.pop("starts_at", NOW - timedelta(hours=1)),
        ends_at=kw.pop("ends_at", NOW + 60 * DAY),
        now=NOW,
        **kw,
    )
    if activate:
        campaign = campaign_activate(campaign=campaign, actor=org.hq_admin, now=NOW)
    return campaign


def enrolled(campaign: Campaign, state: str | None = None) -> set[int]:
    rows = JourneyEnrollment.objects.filter(campaign=campaign)
    if state:
        rows = rows.filter(state=state)
    return set(rows.values_list("member_id", flat=True))


def wave_of(campaign: Campaign, position: int, day: date | None = None) -> Broadcast:
    return Broadcast.objects.get(
        journey_step__campaign=campaign,
        journey_step__position=position,
        wave_day=day or NOW.date(),
    )


def send_wave(wave: Broadcast, now: datetime) -> Any:
    return send_chunk(broadcast_id=wave.pk, low=0, high=2**62, now=now)


def outcomes(wave: Broadcast) -> dict[int, tuple[str, str]]:
    return {d.member_id: (d.status, d.reason) for d in Delivery.objects.filter(broadcast=wave)}


# --- templates and validation -------------------------------------------------------------


def test_every_template_makes_a_valid_draft(org: Org) -> None:
    for key, template in TEMPLATES.items():
        campaign = make_campaign(org, key, activate=False, name=key)
        assert campaign.status == "draft" and campaign.trigger == template.trigger
        assert campaign.steps.count() == len(template.steps)
    assert len(TEMPLATES) == 8
    welcome = Campaign.objects.get(template="welcome")
    steps = list(welcome.steps.order_by("position").values_list("kind", "channel"))
    assert steps == [("send", "inbox"), ("wait", ""), ("branch", ""), ("send", "sms")]
    assert welcome.steps.get(position=1).material.body.startswith("{name}，欢迎")


def _nothing_written(materials: int) -> None:
    assert not Campaign.objects.exists()
    assert not JourneyStep.objects.exists()
    assert Material.objects.count() == materials


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"starts_at": NOW + 2 * DAY, "ends_at": NOW + DAY}, "window"),
        ({"starts_at": NOW - 9 * DAY, "ends_at": NOW - DAY}, "window_past"),
        ({"template_key": "nope"}, "unknown_template"),
        ({"trigger": "no_purchase_days", "trigger_params": {"days": -3}}, "trigger_param"),
        ({"trigger": "birthday", "trigger_params": {"days_before": "x"}}, "trigger_param"),
        ({"trigger": "no_purchase_days", "trigger_params": {}}, "trigger_param"),
        (
            {
                "steps": [
                    StepSpec(1, "send", "inbox", title="t", body="hi"),
                    StepSpec(2, "branch", condition="converted", yes_position=7),
                ]
            },
            "step_missing",
        ),
        (
            {
                "steps": [
                    StepSpec(1, "send", "inbox", title="t", body="hi"),
                    StepSpec(2, "branch", condition="converted", no_position=1),
                ]
            },
            "step_backwards",
        ),
        ({"steps": [StepSpec(1, "wait", wait_hours=3)]}, "no_send_step"),
        ({"steps": [StepSpec(1, "send", "inbox", title="t", body="{nmae}")]}, "unknown_variable"),
        (
            {
                "steps": [
                    StepSpec(1, "send", "inbox", title="t", body="hi"),
                    StepSpec(3, "wait", wait_hours=1),
                ]
            },
            "step_positions",
        ),  # noqa: E501
    ],
)
def test_bad_campaigns_are_refused_and_write_nothing(
    org: Org, overrides: dict[str, Any], code: str
) -> None:
    materials = Material.objects.count()
    args: dict[str, Any] = {
        "actor": org.hq_operator,
        "template_key": "welcome",
        "name": "旅程",
        "goal": "",
        "starts_at": NOW,
        "ends_at": NOW + DAY,
        "now": NOW,
        **overrides,
    }
    with pytest.raises(MemberError) as exc:
        campaign_create(**args)
    assert exc.value.code == code
    assert str(exc.value.message)
    _nothing_written(materials)


def test_only_head_office_activates(org: Org) -> None:
    campaign = make_campaign(org, activate=False, actor=org.store_manager_a1, store=org.a1)
    with pytest.raises(MemberError) as exc:
        campaign_activate(campaign=campaign, actor=org.store_manager_a1, now=NOW)
    assert exc.value.code == "not_an_approver" and exc.value.status == 403
    campaign.refresh_from_db()
    assert campaign.status == "draft" and campaign.activated_by is None
    # A store manager drafts only for their own stores.
    with pytest.raises(MemberError) as exc:
        make_campaign(org, activate=False, actor=org.store_manager_a1, store=org.b1, name="x")
    assert exc.value.code == "store_required"
    assert Campaign.objects.count() == 1


# --- triggers -----------------------------------------------------------------------------


def test_registered_trigger_enrolls_new_members_once(org: Org) -> None:
    campaign = make_campaign(org)
    before = MemberFactory(member_since=NOW - timedelta(minutes=5))
    new = [MemberFactory(member_since=NOW + timedelta(minutes=m)) for m in (1, 9)]
    later = MemberFactory(member_since=NOW + timedelta(minutes=15))
    assert journeys_enroll(now=NOW + timedelta(minutes=10)) == 2
    assert enrolled(campaign) == {m.pk for m in new}
    assert journeys_enroll(now=NOW + timedelta(minutes=10)) == 0
    assert journeys_enroll(now=NOW + timedelta(minutes=20)) == 1
    assert enrolled(campaign) == {m.pk for m in new} | {later.pk}
    assert before.pk not in enrolled(campaign)
    row = JourneyEnrollment.objects.get(member=new[0])
    assert (row.state, row.position, row.next_run_at) == (
        "active",
        1,
        NOW + timedelta(minutes=10),
    )


def test_audience_and_store_limit_who_enters(org: Org) -> None:
    segment = Segment.objects.create(
        name="女性",
        rules={"op": "and", "rules": [{"field": "gender", "operator": "in", "value": ["f"]}]},
    )
    campaign = make_campaign(org, store=org.a1, segment=segment)
    inside = MemberFactory(home_store=org.a1, gender="f", member_since=NOW + timedelta(minutes=1))
    MemberFactory(home_store=org.a1, gender="m", member_since=NOW + timedelta(minutes=1))
    MemberFactory(home_store=org.b1, gender="f", member_since=NOW + timedelta(minutes=1))
    opted = MemberFactory(home_store=org.a1, gender="f", member_since=NOW + timedelta(minutes=1))
    MarketingOptOut.objects.create(member=opted, channel="")
    journeys_enroll(now=NOW + timedelta(minutes=10))
    assert enrolled(campaign) == {inside.pk}


def test_first_purchase_trigger(org: Org) -> None:
    campaign = make_campaign(org, "referral")
    buyer = MemberFactory(first_order_at=NOW + timedelta(minutes=3))
    MemberFactory(first_order_at=NOW - DAY)
    assert journeys_enroll(now=NOW + timedelta(minutes=10)) == 1
    assert enrolled(campaign) == {buyer.pk}


def test_birthday_trigger_runs_once_a_day(org: Org) -> None:
    campaign = make_campaign(org, "birthday")  # 3 days before
    target = NOW.date() + 3 * DAY
    other = NOW.date() + 4 * DAY
    soon = MemberFactory(birthday=date(1990, target.month, min(target.day, 28)))
    tomorrow = MemberFactory(birthday=date(1990, other.month, min(other.day, 28)))
    if target.day > 28 or other.day > 28:
        pytest.skip("month-end dates are covered by the 29 Feb test below")
    assert journeys_enroll(now=NOW) == 1
    assert enrolled(campaign) == {soon.pk}
    assert journeys_enroll(now=NOW + timedelta(hours=5)) == 0
    assert journeys_enroll(now=NOW + DAY) == 1
    assert enrolled(campaign) == {soon.pk, tomorrow.pk}


def test_birthday_codes_greet_29_february_on_the_28th_in_other_years() -> None:
    tz = timezone.get_current_timezone()
    campaign = Campaign(trigger_params={"days_before": 3}, last_enrolled_at=None)
    assert _birthday_codes(campaign, datetime(2027, 2, 25, 10, tzinfo=tz)) == [228, 229]
    assert _birthday_codes(campaign, datetime(2028, 2, 25, 10, tzinfo=tz)) == [228]
    assert _birthday_codes(campaign, datetime(2028, 2, 26, 10, tzinfo=tz)) == [229]
    # Missed days are caught up (the last run was two days ago).
    campaign.last_enrolled_at = datetime(2027, 3, 1, 10, tzinfo=tz)
    assert _birthday_codes(campaign, datetime(2027, 3, 3, 10, tzinfo=tz)) == [305, 306]


def test_no_purchase_trigger_takes_members_crossing_the_gap(org: Org) -> None:
    campaign = make_campaign(org, "win_back", trigger_params={"days": 30})
    crossing = MemberFactory(last_order_at=NOW - 30 * DAY + timedelta(minutes=5))
    MemberFactory(last_order_at=NOW - 40 * DAY)  # asleep before the campaign started
    MemberFactory(last_order_at=NOW - 10 * DAY)
    assert journeys_enroll(now=NOW + timedelta(minutes=10)) == 1
    assert enrolled(campaign) == {crossing.pk}
    assert journeys_enroll(now=NOW + timedelta(minutes=20)) == 0


def test_tier_up_trigger(org: Org) -> None:
    campaign = make_campaign(org, "member_day", trigger="tier_up", trigger_params={})
    up, down = MemberFactory(), MemberFactory()
    TierChange.objects.create(member=up, kind="upgrade", changed_at=NOW + timedelta(minutes=2))
    TierChange.objects.create(member=down, kind="downgrade", changed_at=NOW + timedelta(minutes=2))
    assert journeys_enroll(now=NOW + timedelta(minutes=10)) == 1
    assert enrolled(campaign) == {up.pk}


def test_cart_abandoned_trigger(org: Org) -> None:
    campaign = make_campaign(
        org, "coupon_drop", trigger="cart_abandoned", trigger_params={"hours": 4}
    )
    abandoned, bought, fresh = MemberFactory(), MemberFactory(), MemberFactory()
    for n, (member, ago) in enumerate(
        ((abandoned, 4 * 60 - 5), (bought, 4 * 60 - 5), (fresh, 3 * 60))
    ):
        BehaviourEvent.objects.create(
            client_event_id=f"m{member.pk}:{n}",
            member=member,
            type="add_to_cart",
            occurred_at=NOW - timedelta(minutes=ago),
        )
    OrderFactory(member=bought, paid_at=NOW - timedelta(minutes=30))
    assert journeys_enroll(now=NOW + timedelta(minutes=10)) == 1
    assert enrolled(campaign) == {abandoned.pk}
    assert journeys_enroll(now=NOW + timedelta(minutes=20)) == 0


def test_completed_member_enters_again_but_never_twice_at_once(org: Org) -> None:
    campaign = make_campaign(org, "referral")  # wait 2 days → send
    member = MemberFactory(first_order_at=NOW + timedelta(minutes=1))
    journeys_enroll(now=NOW + timedelta(minutes=10))
    # Still on the journey: a second trigger does not add another enrollment.
    Member.objects.filter(pk=member.pk).update(first_order_at=NOW + timedelta(minutes=15))
    assert journeys_enroll(now=NOW + timedelta(minutes=20)) == 0
    journeys_advance(now=NOW + timedelta(minutes=20))
    journeys_advance(now=NOW + 3 * DAY)
    assert enrolled(campaign, "completed") == {member.pk}
    Member.objects.filter(pk=member.pk).update(first_order_at=NOW + 3 * DAY + timedelta(minutes=1))
    assert journeys_enroll(now=NOW + 3 * DAY + timedelta(minutes=10)) == 1
    assert JourneyEnrollment.objects.filter(campaign=campaign, member=member).count() == 2


def _race(*calls: Callable[[], Any]) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(call())
        except BaseException as exc:  # collected and checked by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_two_enroll_runs_at_once_enroll_each_member_once(org: Org) -> None:
    campaign = make_campaign(org)
    members = [MemberFactory(member_since=NOW + timedelta(minutes=1)) for _ in range(3)]
    at = NOW + timedelta(minutes=10)
    results, errors = _race(lambda: journeys_enroll(now=at), lambda: journeys_enroll(now=at))
    assert errors == [] and sorted(results) == [0, 3]
    assert JourneyEnrollment.objects.filter(campaign=campaign).count() == 3
    assert enrolled(campaign) == {m.pk for m in members}
    # Even without the campaign lock, the partial unique index holds (a second run
    # whose window overlaps the first adds nobody already on the journey).
    Campaign.objects.filter(pk=campaign.pk).update(last_enrolled_at=NOW)
    assert journeys_enroll(now=at) == 0


# --- advancing ----------------------------------------------------------------------------


def test_walks_send_wait_branch_send(org: Org) -> None:
    campaign = make_campaign(org)  # inbox → wait 3 days → converted? end : sms
    buyer = MemberFactory(member_since=NOW + timedelta(minutes=1))
    idle = MemberFactory(member_since=NOW + timedelta(minutes=1))
    IdentityFactory(member=idle, kind="phone", value="+8613900000001")
    journeys_enroll(now=NOW + timedelta(minutes=5))
    t1 = NOW + timedelta(minutes=6)
    stats = journeys_advance(now=t1)
    assert (stats.moved, stats.sent_to_waves) == (2, 2)
    first = wave_of(campaign, 1)
    assert (first.status, first.segment, first.channel) == ("sending", None, "inbox")
    assert outcomes(first) == {buyer.pk: ("planned", ""), idle.pk: ("planned", "")}
    assert send_wave(first, t1).sent == 2
    assert send_wave(first, t1).sent == 0  # exactly once
    assert InboxMessage.objects.filter(key=f"b{first.pk}:m{idle.pk}").count() == 1
    rows = {e.member_id: e for e in JourneyEnrollment.objects.filter(campaign=campaign)}
    assert {(e.position, e.next_run_at) for e in rows.values()} == {(3, t1 + 3 * DAY)}
    # Nothing is due before the wait is over.
    assert journeys_advance(now=t1 + 2 * DAY).moved == 0

    OrderFactory(member=buyer, paid_at=NOW + DAY)
    t2 = t1 + 3 * DAY
    assert journeys_advance(now=t2).moved == 2
    assert enrolled(campaign, "completed") == {buyer.pk, idle.pk}
    second = wave_of(campaign, 4, t2.date())
    assert (second.channel, outcomes(second)) == ("sms", {idle.pk: ("planned", "")})
    figures = {f.step.position: f for f in campaign_step_figures(campaign)}
    assert [figures[n].entered for n in (1, 2, 3, 4)] == [2, 2, 2, 1]
    assert (figures[1].sent, figures[4].waiting, figures[1].converted) == (2, 1, 1)


def test_opened_and_tag_branches(org: Org) -> None:
    tag = TagFactory()
    steps = [
        StepSpec(1, "send", "inbox", title="生日", body="{name}生日快乐"),
        StepSpec(2, "wait", wait_hours=24),
        StepSpec(3, "branch", condition="opened", yes_position=4, no_position=7),
        StepSpec(4, "branch", condition="has_tag", tag=tag, yes_position=5),
        StepSpec(5, "send", "inbox", title="VIP", body="专属"),
        StepSpec(6, "end"),
        StepSpec(7, "send", "inbox", title="提醒", body="别忘了"),
    ]
    campaign = make_campaign(org, "birthday", trigger="registered", trigger_params={}, steps=steps)
    reader, tagged_reader, ignorer = (
        MemberFactory(member_since=NOW + timedelta(minutes=1)) for _ in range(3)
    )
    MemberTag.objects.create(member=tagged_reader, tag=tag, source=TagSource.STAFF, added_at=NOW)
    journeys_enroll(now=NOW + timedelta(minutes=5))
    journeys_advance(now=NOW + timedelta(minutes=6))
    send_wave(wave_of(campaign, 1), NOW + timedelta(minutes=6))
    InboxMessage.objects.filter(member__in=[reader, tagged_reader]).update(
        read_at=NOW + timedelta(hours=2), created_at=NOW + timedelta(minutes=6)
    )
    InboxMessage.objects.filter(member=ignorer).update(created_at=NOW + timedelta(minutes=6))
    later = NOW + 2 * DAY
    journeys_advance(now=later)
    assert set(
        Delivery.objects.filter(broadcast__journey_step__position=7).values_list(
            "member_id", flat=True
        )
    ) == {ignorer.pk}
    assert set(
        Delivery.objects.filter(broadcast__journey_step__position=5).values_list(
            "member_id", flat=True
        )
    ) == {tagged_reader.pk}
    assert enrolled(campaign, "completed") == {reader.pk, tagged_reader.pk, ignorer.pk}
    assert JourneyVisit.objects.filter(enrollment__member=reader).count() == 4


def test_exit_conditions_come_first(org: Org) -> None:
    tag = TagFactory()
    campaign = make_campaign(org, "win_back", trigger="registered", trigger_params={}, exit_tag=tag)
    assert campaign.exit_on_conversion
    buyer, opted, tagged, stays = (
        MemberFactory(member_since=NOW + timedelta(minutes=1)) for _ in range(4)
    )
    journeys_enroll(now=NOW + timedelta(minutes=5))
    OrderFactory(member=buyer, paid_at=NOW + timedelta(minutes=7), amount=Decimal("9.90"))
    MarketingOptOut.objects.create(member=opted, channel="")
    MemberTag.objects.create(member=tagged, tag=tag, source=TagSource.STAFF, added_at=NOW)
    stats = journeys_advance(now=NOW + timedelta(minutes=8))
    assert stats.exited == {"converted": 1, "opted_out": 1, "tagged": 1}
    reasons = dict(
        JourneyEnrollment.objects.filter(campaign=campaign).values_list("member_id", "exit_reason")
    )
    assert reasons == {
        buyer.pk: "converted",
        opted.pk: "opted_out",
        tagged.pk: "tagged",
        stays.pk: "",
    }
    assert set(Delivery.objects.values_list("member_id", flat=True)) == {stays.pk}


def test_journey_sends_share_caps_with_broadcasts(org: Org) -> None:
    campaign = make_campaign(org)
    capped, free = (MemberFactory(member_since=NOW + timedelta(minutes=1)) for _ in range(2))
    other = Broadcast.objects.create(
        name="会员日",
        channel="sms",
        material=Material.objects.create(kind="text", title="x", body="x"),
        created_by=org.hq_operator,
        status="done",
    )
    Delivery.objects.create(
        broadcast=other, member=capped, channel="sms", send_day=NOW.date(), status="sent"
    )
    assert FrequencyRule.objects.get(channel="").per_day == 1
    journeys_enroll(now=NOW + timedelta(minutes=5))
    journeys_advance(now=NOW + timedelta(minutes=6))
    wave = wave_of(campaign, 1)
    assert outcomes(wave) == {capped.pk: ("suppressed", "frequency_cap"), free.pk: ("planned", "")}
    # A broadcast sent after planning, before the wave goes, is caught at send time too.
    Delivery.objects.create(
        broadcast=other, member=free, channel="sms", send_day=NOW.date(), status="sent"
    )
    stats = send_wave(wave, NOW + timedelta(minutes=7))
    assert (stats.sent, stats.suppressed) == (0, 1)
    assert outcomes(wave)[free.pk] == ("suppressed", "frequency_cap")


def test_opt_out_after_planning_is_honoured_when_sending(org: Org) -> None:
    campaign = make_campaign(org)
    member = MemberFactory(member_since=NOW + timedelta(minutes=1))
    journeys_enroll(now=NOW + timedelta(minutes=5))
    journeys_advance(now=NOW + timedelta(minutes=6))
    wave = wave_of(campaign, 1)
    assert outcomes(wave) == {member.pk: ("planned", "")}
    MarketingOptOut.objects.create(member=member, channel="inbox")
    assert send_wave(wave, NOW + timedelta(minutes=7)).suppressed == 1
    assert outcomes(wave) == {member.pk: ("suppressed", "opted_out")}
    assert not InboxMessage.objects.filter(member=member).exists()


def test_quiet_hours_hold_sends_until_morning(org: Org) -> None:
    campaign = make_campaign(org)
    member = MemberFactory(member_since=NOW + timedelta(minutes=1))
    journeys_enroll(now=NOW + timedelta(minutes=5))
    night = NOW.replace(hour=23)
    journeys_advance(now=night)
    row = JourneyEnrollment.objects.get(member=member)
    assert (row.position, row.next_run_at) == (1, NOW.replace(hour=8) + DAY)
    assert not Broadcast.objects.filter(journey_step__campaign=campaign).exists()


def test_a_closed_wave_reopens_for_later_members(
    org: Org, django_capture_on_commit_callbacks: Any
) -> None:
    campaign = make_campaign(org)
    first = MemberFactory(member_since=NOW + timedelta(minutes=1))
    journeys_enroll(now=NOW + timedelta(minutes=5))
    journeys_advance(now=NOW + timedelta(minutes=6))
    wave = wave_of(campaign, 1)
    send_wave(wave, NOW + timedelta(minutes=6))
    Broadcast.objects.filter(pk=wave.pk).update(status="done")  # the sweeper closed it
    second = MemberFactory(member_since=NOW + timedelta(minutes=11))
    journeys_enroll(now=NOW + timedelta(minutes=15))
    with django_capture_on_commit_callbacks() as callbacks:
        journeys_advance(now=NOW + timedelta(minutes=16))
    wave.refresh_from_db()
    assert wave.status == "sending" and len(callbacks) == 1
    assert outcomes(wave) == {first.pk: ("sent", ""), second.pk: ("planned", "")}


def test_pause_end_and_window_close(org: Org) -> None:
    campaign = make_campaign(org, ends_at=NOW + 10 * DAY)
    member = MemberFactory(member_since=NOW + timedelta(minutes=1))
    journeys_enroll(now=NOW + timedelta(minutes=5))
    campaign_pause(campaign=campaign, actor=org.hq_admin)
    assert journeys_advance(now=NOW + timedelta(minutes=6)).moved == 0
    assert journeys_enroll(now=NOW + timedelta(minutes=20)) == 0
    campaign = campaign_activate(
        campaign=campaign, actor=org.hq_admin, now=NOW + timedelta(minutes=30)
    )
    assert journeys_advance(now=NOW + timedelta(minutes=31)).moved == 1
    # The window closes: the campaign ends and members leave.
    journeys_advance(now=NOW + 11 * DAY)
    campaign.refresh_from_db()
    row = JourneyEnrollment.objects.get(member=member)
    assert (campaign.status, row.state, row.exit_reason) == ("ended", "exited", "campaign_ended")

    other = make_campaign(org, name="b")
    MemberFactory(member_since=NOW + timedelta(minutes=1))
    journeys_enroll(now=NOW + timedelta(minutes=5))
    # Both members registered after `other` started (one is also in the ended campaign).
    assert campaign_end(campaign=other, actor=org.hq_admin, now=NOW + timedelta(minutes=6)) == 2
    with pytest.raises(MemberError):
        campaign_end(campaign=other, actor=org.hq_admin)


def test_audience_trigger_enrolls_the_audience_once(org: Org) -> None:
    campaign = make_campaign(org, "member_day", store=org.a1)
    in_a1 = {
        org.member_of_guide_a1.pk,
        org.member_of_guide_a1_other.pk,
        org.member_a1_unassigned.pk,
    }
    assert journeys_enroll(now=NOW) == 3
    assert enrolled(campaign) == in_a1
    MemberFactory(home_store=org.a1)
    assert journeys_enroll(now=NOW + DAY) == 0
