"""Journeys and profiling consent: a journey that picks its members by profiling (a
behaviour trigger, or an audience by behaviour or RFM) does not enrol members who
withdrew profiling consent, counts them, and walks out those who withdraw on the way
(exit reason "profiling withdrawn"); a journey on plain facts is not affected."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from campaigns.models import Campaign, Delivery, JourneyEnrollment, MarketingOptOut, TriggerKind
from campaigns.services.journeys import (
    campaign_uses_profiling,
    journeys_advance,
    journeys_enroll,
)
from members.models import Member, Segment
from tests.campaigns.test_consent_profiling import BY_BEHAVIOUR, profiling
from tests.campaigns.test_journeys import DAY, NOW, enrolled, make_campaign, wave_of
from tests.conftest import Org
from tests.members.factories import MemberFactory, phone_identity
from touchpoints.models import BehaviourEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("trigger", "profiles"),
    [
        (TriggerKind.REGISTERED, False),
        (TriggerKind.FIRST_PURCHASE, False),
        (TriggerKind.BIRTHDAY, False),
        (TriggerKind.NO_PURCHASE_DAYS, False),
        (TriggerKind.TIER_UP, False),
        (TriggerKind.CART_ABANDONED, True),
        (TriggerKind.AUDIENCE, False),
    ],
)
def test_which_triggers_profile(trigger: str, profiles: bool) -> None:
    assert campaign_uses_profiling(Campaign(trigger=trigger)) is profiles
    # An audience chosen by behaviour makes any journey a profiling one.
    by_behaviour = Segment(name="浏览", rules=BY_BEHAVIOUR)
    assert campaign_uses_profiling(Campaign(trigger=trigger, segment=by_behaviour)) is True
    by_city = Segment(name="上海", rules={"field": "city", "operator": "in", "value": ["上海"]})
    assert campaign_uses_profiling(Campaign(trigger=trigger, segment=by_city)) is profiles


def abandon_cart(member: Member, n: int = 0) -> None:
    BehaviourEvent.objects.create(
        client_event_id=f"cart{member.pk}:{n}",
        member=member,
        type="add_to_cart",
        occurred_at=NOW - timedelta(minutes=4 * 60 - 5),
    )


def cart_campaign(org: Org, **kw: object) -> Campaign:
    # welcome's steps: inbox → wait 3 days → converted? end : sms
    return make_campaign(
        org, "welcome", trigger="cart_abandoned", trigger_params={"hours": 4}, **kw
    )


def test_an_abandoned_cart_does_not_enrol_who_withdrew_profiling(org: Org) -> None:
    campaign = cart_campaign(org)
    withdrawn, unasked, again = MemberFactory(), MemberFactory(), MemberFactory()
    profiling(withdrawn, granted=False)
    profiling(again, granted=False)
    profiling(again, granted=True)  # consented again
    for member in (withdrawn, unasked, again):
        abandon_cart(member)
    assert journeys_enroll(now=NOW + timedelta(minutes=10)) == 2
    assert enrolled(campaign) == {unasked.pk, again.pk}  # never asked is not a withdrawal
    campaign.refresh_from_db()
    assert campaign.profiling_left_out == 1
    # The next run reads only what fired since: nothing new, the tally stays.
    assert journeys_enroll(now=NOW + timedelta(minutes=20)) == 0
    campaign.refresh_from_db()
    assert campaign.profiling_left_out == 1


def test_a_plain_trigger_enrols_who_withdrew_profiling(org: Org) -> None:
    campaign = make_campaign(org)  # registered as a member: a fact, not a profile
    member = MemberFactory(member_since=NOW + timedelta(minutes=1))
    profiling(member, granted=False)
    assert journeys_enroll(now=NOW + timedelta(minutes=10)) == 1
    assert enrolled(campaign) == {member.pk}
    campaign.refresh_from_db()
    assert campaign.profiling_left_out == 0


def test_an_audience_by_behaviour_leaves_out_who_withdrew_before_the_control_draw(
    org: Org,
) -> None:
    segment = Segment.objects.create(name="浏览过", rules=BY_BEHAVIOUR)
    campaign = make_campaign(org, segment=segment, holdout_percent=50)
    withdrawn, *others = (MemberFactory(member_since=NOW + timedelta(minutes=1)) for _ in range(3))
    profiling(withdrawn, granted=False)
    assert journeys_enroll(now=NOW + timedelta(minutes=10)) == 2
    assert enrolled(campaign) == {m.pk for m in others}
    # Half of the two who entered, exactly: the withdrawn member is not in the draw.
    assert JourneyEnrollment.objects.filter(campaign=campaign, control=True).count() == 1
    campaign.refresh_from_db()
    assert campaign.profiling_left_out == 1


def test_who_withdraws_on_the_journey_leaves_it_at_the_next_step(org: Org) -> None:
    campaign = cart_campaign(org)
    plain = make_campaign(org, name="欢迎")  # registered trigger: not a profiling journey
    leaver, opted, stays = (
        MemberFactory(member_since=NOW + timedelta(minutes=1)) for _ in range(3)
    )
    for member in (leaver, opted, stays):
        abandon_cart(member)
        phone_identity(member)
    assert journeys_enroll(now=NOW + timedelta(minutes=10)) == 6
    t1 = NOW + timedelta(minutes=11)
    assert journeys_advance(now=t1).sent_to_waves == 6
    profiling(leaver, granted=False)
    profiling(opted, granted=False)
    MarketingOptOut.objects.create(member=opted, channel="")
    t2 = t1 + 3 * DAY
    stats = journeys_advance(now=t2)
    # Opting out of everything is named first (as for broadcasts); the plain journey
    # leaves the withdrawn member on it.
    assert stats.exited == {"no_profiling": 1, "opted_out": 2}
    reasons = dict(
        JourneyEnrollment.objects.filter(campaign=campaign).values_list("member_id", "exit_reason")
    )
    assert reasons == {leaver.pk: "no_profiling", opted.pk: "opted_out", stays.pk: ""}
    row = JourneyEnrollment.objects.get(campaign=campaign, member=leaver)
    assert (row.state, row.finished_at, row.next_run_at, row.position) == ("exited", t2, None, 3)
    assert enrolled(plain, "completed") == {leaver.pk, stays.pk}
    sms = wave_of(campaign, 4, t2.date())
    assert set(Delivery.objects.filter(broadcast=sms).values_list("member_id", flat=True)) == {
        stays.pk
    }


def test_journey_page_counts_who_was_left_out(client: Client, org: Org) -> None:
    campaign = cart_campaign(org)
    plain = make_campaign(org, name="欢迎")
    withdrawn, leaver = MemberFactory(), MemberFactory()
    profiling(withdrawn, granted=False)
    for member in (withdrawn, leaver):
        abandon_cart(member)
    journeys_enroll(now=NOW + timedelta(minutes=10))
    profiling(leaver, granted=False)
    journeys_advance(now=NOW + timedelta(minutes=11))
    client.force_login(org.hq_operator)
    text = client.get(f"/hq/campaigns/{campaign.pk}/").content.decode()
    assert "因撤回画像授权而排除：1 人未进入，1 人退出旅程。" in text
    assert "· 撤回画像授权" in text  # among the ways to leave the journey
    assert "已退出 · 已撤回画像授权" in text  # the member's row
    page = client.get(f"/hq/campaigns/{plain.pk}/")
    assert page.status_code == 200
    assert 'data-testid="profiling-left-out"' not in page.content.decode()
