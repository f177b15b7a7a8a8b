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
    campaign_steps_edit,
    campaign_update,
    journeys_advance,
    journeys_enroll,
    steps_edited,
)
from campaigns.services.sending import send_chunk
from members.models import Member, MemberTag, Segment, TagSource, TierChange
from members.services.errors import Conflict, MemberError
from scrm.core.models import AuditEvent
from tests.conftest import Org
from tests.members.factories import (
    MemberFactory,
    OrderFactory,
    TagFactory,
    phone_identity,
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
    phone_identity(idle, "+8613900000001")
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


# --- editing drafts -------------------------------------------------------------------------


def _journey(*specs: StepSpec) -> list[StepSpec]:
    return list(specs)


def _shape(steps: list[StepSpec]) -> list[tuple[int, str, str, int | None, int | None]]:
    return [(s.position, s.kind, s.title, s.yes_position, s.no_position) for s in steps]


FIVE = _journey(
    StepSpec(1, "send", "inbox", title="a", body="a"),
    StepSpec(2, "branch", condition="converted", yes_position=4, no_position=5),
    StepSpec(3, "wait", title="w", wait_hours=24),
    StepSpec(4, "send", "inbox", title="b", body="b"),
    StepSpec(5, "send", "sms", title="c", body="c"),
)


def test_steps_edited_renumbers_and_remaps_branch_targets_exactly() -> None:
    removed = steps_edited(FIVE, op="remove", position=3)
    assert _shape(removed.steps) == [
        (1, "send", "a", None, None),
        (2, "branch", "", 3, 4),
        (3, "send", "b", None, None),
        (4, "send", "c", None, None),
    ]
    assert removed.ended == []
    # Removing a branch's target: that path ends the journey, and says which one.
    target_gone = steps_edited(FIVE, op="remove", position=4)
    assert _shape(target_gone.steps)[1] == (2, "branch", "", None, 4)
    assert target_gone.ended == [(2, "yes")]
    down = steps_edited(FIVE, op="down", position=3)
    assert _shape(down.steps) == [
        (1, "send", "a", None, None),
        (2, "branch", "", 3, 5),
        (3, "send", "b", None, None),
        (4, "wait", "w", None, None),
        (5, "send", "c", None, None),
    ]
    up = steps_edited(FIVE, op="up", position=2)
    assert _shape(up.steps)[:2] == [(1, "branch", "", 4, 5), (2, "send", "a", None, None)]
    # An inserted step pushes the later ones on; targets follow them. Its own targets are
    # read in the new numbering.
    added = steps_edited(
        FIVE,
        op="add",
        position=2,
        step=StepSpec(0, "branch", condition="opened", yes_position=6),
    )
    assert _shape(added.steps) == [
        (1, "send", "a", None, None),
        (2, "branch", "", 6, None),
        (3, "branch", "", 5, 6),
        (4, "wait", "w", None, None),
        (5, "send", "b", None, None),
        (6, "send", "c", None, None),
    ]
    appended = steps_edited(FIVE, op="add", step=StepSpec(0, "end"))
    assert _shape(appended.steps)[-1] == (6, "end", "", None, None)
    # The input is not modified.
    assert _shape(FIVE)[1] == (2, "branch", "", 4, 5)


def _draft(org: Org, **kw: Any) -> Campaign:
    return make_campaign(org, activate=False, **kw)


def snapshot(campaign: Campaign) -> tuple[Any, ...]:
    row = Campaign.objects.values().get(pk=campaign.pk)
    steps = list(JourneyStep.objects.filter(campaign=campaign).order_by("position").values())
    return (
        row,
        steps,
        Material.objects.count(),
        AuditEvent.objects.filter(action__startswith="campaign.").count(),
    )


def _positions(campaign: Campaign) -> list[tuple[int, str, int | None, int | None]]:
    return list(
        campaign.steps.order_by("position").values_list(
            "position", "kind", "yes_position", "no_position"
        )
    )


def test_each_step_edit_is_written_and_audited(org: Org) -> None:
    campaign = _draft(org, store=org.a1)  # welcome: send, wait, branch(no → 4), send
    library = Material.objects.create(kind="text", title="库", body="{name}，你好")
    tag = TagFactory()
    actor = org.store_manager_a1

    campaign_steps_edit(
        campaign=campaign,
        actor=actor,
        op="add",
        step=StepSpec(0, "send", "inbox", material=library),
    )
    campaign_steps_edit(
        campaign=campaign, actor=actor, op="add", position=2, step=StepSpec(0, "wait", wait_hours=5)
    )
    assert _positions(campaign) == [
        (1, "send", None, None),
        (2, "wait", None, None),
        (3, "wait", None, None),
        (4, "branch", None, 5),
        (5, "send", None, None),
        (6, "send", None, None),
    ]
    assert campaign.steps.get(position=6).material == library
    assert campaign.steps.get(position=2).wait_hours == 5

    # A new text becomes a text material of the campaign's store.
    campaign_steps_edit(
        campaign=campaign,
        actor=actor,
        op="change",
        position=4,
        step=StepSpec(4, "branch", condition="has_tag", tag=tag, yes_position=6, no_position=5),
    )
    campaign_steps_edit(
        campaign=campaign,
        actor=actor,
        op="change",
        position=1,
        step=StepSpec(1, "send", "sms", title="新", body="{name}，新文案"),
    )
    first = campaign.steps.get(position=1)
    assert (first.channel, first.material.body, first.material.store) == (
        "sms",
        "{name}，新文案",
        org.a1,
    )
    branch = campaign.steps.get(position=4)
    assert (branch.condition, branch.tag, branch.yes_position, branch.no_position) == (
        "has_tag",
        tag,
        6,
        5,
    )

    campaign_steps_edit(campaign=campaign, actor=actor, op="down", position=2)
    assert [s.wait_hours for s in campaign.steps.filter(kind="wait").order_by("position")] == [
        72,
        5,
    ]
    campaign_steps_edit(campaign=campaign, actor=actor, op="up", position=6)
    assert _positions(campaign) == [
        (1, "send", None, None),
        (2, "wait", None, None),
        (3, "wait", None, None),
        (4, "branch", 5, 6),
        (5, "send", None, None),
        (6, "send", None, None),
    ]
    assert campaign.steps.get(position=5).material == library
    removed = campaign_steps_edit(campaign=campaign, actor=actor, op="remove", position=6)
    assert removed.ended == [(4, "no")]
    assert _positions(campaign) == [
        (1, "send", None, None),
        (2, "wait", None, None),
        (3, "wait", None, None),
        (4, "branch", 5, None),
        (5, "send", None, None),
    ]
    audits = list(
        AuditEvent.objects.filter(action="campaign.steps", target_id=str(campaign.pk))
        .order_by("pk")
        .values_list("actor", "data__op", "data__position")
    )
    assert audits == [
        (actor.pk, "add", None),
        (actor.pk, "add", 2),
        (actor.pk, "change", 4),
        (actor.pk, "change", 1),
        (actor.pk, "down", 2),
        (actor.pk, "up", 6),
        (actor.pk, "remove", 6),
    ]
    assert AuditEvent.objects.get(data__op="remove").data["ended"] == ["4:no"]


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        ({"op": "remove", "position": 1}, "no_send_step"),  # step 4 went first: the last send
        ({"op": "up", "position": 4}, "step_backwards"),  # the branch's "no" goes behind it
        (
            {"op": "change", "position": 3, "step": StepSpec(3, "branch", no_position=2)},
            "step_condition",
        ),
        (
            {
                "op": "change",
                "position": 3,
                "step": StepSpec(3, "branch", condition="opened", no_position=2),
            },
            "step_backwards",
        ),
        (
            {
                "op": "change",
                "position": 1,
                "step": StepSpec(1, "send", "inbox", title="t", body="{nmae}，你好"),
            },
            "unknown_variable",
        ),
        ({"op": "add", "step": StepSpec(0, "wait", wait_hours=366 * 24)}, "step_wait"),
        ({"op": "add", "step": StepSpec(0, "wait", wait_hours=0)}, "step_wait"),
        ({"op": "add", "position": 9, "step": StepSpec(0, "end")}, "step_missing"),
        ({"op": "remove", "position": 7}, "step_missing"),
        ({"op": "up", "position": 1}, "step_move"),
        ({"op": "down", "position": 4}, "step_move"),
        ({"op": "explode", "position": 1}, "step_edit"),
    ],
)
def test_a_bad_step_edit_is_refused_and_changes_nothing(
    org: Org, edit: dict[str, Any], code: str
) -> None:
    campaign = _draft(org)  # welcome: send, wait, branch(no → 4), send
    if code == "no_send_step":
        campaign_steps_edit(campaign=campaign, actor=org.hq_operator, op="remove", position=4)
    before = snapshot(campaign)
    with pytest.raises(MemberError) as exc:
        campaign_steps_edit(campaign=campaign, actor=org.hq_operator, **edit)
    assert exc.value.code == code and exc.value.status == 400
    assert str(exc.value.message)
    assert snapshot(campaign) == before


def test_who_may_edit_steps_and_when(org: Org) -> None:
    hq_campaign = _draft(org, name="总部")
    b1_campaign = _draft(org, name="北京", store=org.b1)
    for campaign in (hq_campaign, b1_campaign):
        before = snapshot(campaign)
        with pytest.raises(MemberError) as exc:
            campaign_steps_edit(
                campaign=campaign, actor=org.store_manager_a1, op="remove", position=4
            )
        assert (exc.value.code, exc.value.status) == ("not_yours", 403)
        assert snapshot(campaign) == before
    active = make_campaign(org, name="进行中")
    paused = campaign_pause(campaign=make_campaign(org, name="暂停"), actor=org.hq_admin)
    ended = make_campaign(org, name="结束")
    campaign_end(campaign=ended, actor=org.hq_admin, now=NOW)
    for campaign, code in ((active, "read_only"), (paused, "steps_locked"), (ended, "read_only")):
        before = snapshot(campaign)
        with pytest.raises(Conflict) as conflict:
            campaign_steps_edit(campaign=campaign, actor=org.hq_admin, op="remove", position=4)
        assert conflict.value.code == code
        assert snapshot(campaign) == before


def test_settings_are_edited_with_the_checks_of_creation(org: Org) -> None:
    campaign = _draft(org, store=org.a1)
    segment = Segment.objects.create(name="女性", rules={"op": "and", "rules": []})
    tag = TagFactory()
    updated = campaign_update(
        campaign=campaign,
        actor=org.store_manager_a1,
        name=" 新名字 ",
        goal="复购",
        segment=segment,
        store=org.a1,
        starts_at=NOW + DAY,
        ends_at=NOW + 9 * DAY,
        trigger="no_purchase_days",
        trigger_params={"days": "60"},
        exit_on_conversion=True,
        exit_tag=tag,
        now=NOW,
    )
    campaign.refresh_from_db()
    assert (
        campaign.name,
        campaign.goal,
        campaign.segment,
        campaign.starts_at,
        campaign.ends_at,
        campaign.trigger,
        campaign.trigger_params,
        campaign.exit_on_conversion,
        campaign.exit_tag,
        campaign.status,
    ) == (
        "新名字",
        "复购",
        segment,
        NOW + DAY,
        NOW + 9 * DAY,
        "no_purchase_days",
        {"days": 60},
        True,
        tag,
        "draft",
    )
    assert updated.pk == campaign.pk
    event = AuditEvent.objects.get(action="campaign.update")
    assert event.actor == org.store_manager_a1 and "trigger_params" in event.data["changed"]


def _settings(campaign: Campaign, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": campaign.name,
        "goal": campaign.goal,
        "segment": campaign.segment,
        "store": campaign.store,
        "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at,
        "trigger": campaign.trigger,
        "trigger_params": campaign.trigger_params,
        "exit_on_conversion": campaign.exit_on_conversion,
        "exit_tag": campaign.exit_tag,
        "now": NOW,
    }
    return {**values, **changes}


@pytest.mark.parametrize(
    ("changes", "code", "status"),
    [
        ({"name": "  "}, "name", 400),
        ({"ends_at": NOW - DAY}, "window", 400),
        ({"starts_at": NOW - 9 * DAY, "ends_at": NOW - DAY}, "window_past", 400),
        ({"trigger": "no_purchase_days", "trigger_params": {"days": "0"}}, "trigger_param", 400),
        ({"trigger": "nope"}, "unknown_trigger", 400),
        ({"store": "b1"}, "store_required", 403),
        ({"store": None}, "store_required", 403),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(
    org: Org, changes: dict[str, Any], code: str, status: int
) -> None:
    campaign = _draft(org, store=org.a1)
    if changes.get("store") == "b1":
        changes["store"] = org.b1
    before = snapshot(campaign)
    with pytest.raises(MemberError) as exc:
        campaign_update(
            campaign=campaign, actor=org.store_manager_a1, **_settings(campaign, **changes)
        )
    assert (exc.value.code, exc.value.status) == (code, status)
    assert snapshot(campaign) == before


def test_a_paused_campaign_keeps_its_store_and_steps_but_its_settings_change(org: Org) -> None:
    campaign = campaign_pause(campaign=make_campaign(org, store=org.a1), actor=org.hq_admin)
    campaign_update(campaign=campaign, actor=org.hq_admin, **_settings(campaign, name="改名"))
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status) == ("改名", "paused")
    before = snapshot(campaign)
    with pytest.raises(Conflict) as exc:
        campaign_update(campaign=campaign, actor=org.hq_admin, **_settings(campaign, store=org.a2))
    assert exc.value.code == "store_locked"
    assert snapshot(campaign) == before
    active = make_campaign(org, name="进行中")
    before = snapshot(active)
    with pytest.raises(Conflict) as exc:
        campaign_update(campaign=active, actor=org.hq_admin, **_settings(active, name="x"))
    assert exc.value.code == "read_only"
    assert snapshot(active) == before
    hq_campaign = _draft(org, name="总部")
    with pytest.raises(MemberError) as refused:
        campaign_update(
            campaign=hq_campaign, actor=org.store_manager_a1, **_settings(hq_campaign, name="x")
        )
    assert (refused.value.code, refused.value.status) == ("not_yours", 403)
    assert Campaign.objects.get(pk=hq_campaign.pk).name == "总部"
