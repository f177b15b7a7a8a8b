"""Consent through a merge of two members: the kept member ends with, per purpose, the
latest decision of either person (a withdrawal is never overridden by an older grant),
written as new "merge" entries with the opt-outs to match; undo gives each member their
own state back, again as entries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import ConsentEntry, MarketingOptOut
from campaigns.selectors.consent import consent_states
from campaigns.services.consent import consent_record
from members.services.merge import member_merge, member_merge_undo
from tests.conftest import Org

pytestmark = pytest.mark.django_db

SMS = "marketing_sms"
DAY = timedelta(days=1)


def decide(member, purpose: str, granted: bool, days_ago: float, channel="mini_program"):
    return consent_record(
        member=member,
        purpose=purpose,
        granted=granted,
        source="mini_program" if channel == "mini_program" else "guide",
        channel=channel,
        now=timezone.now() - days_ago * DAY,
    )


def state(member) -> dict[str, tuple[bool | None, bool]]:
    """(latest decision, in effect) per purpose decided, or marketing opted out of."""
    return {
        s.purpose: (s.granted, s.effective)
        for s in consent_states(member=member)
        if s.granted is not None or (s.purpose.startswith("marketing") and not s.effective)
    }


def opt_outs(member) -> set[str]:
    return set(MarketingOptOut.objects.filter(member=member).values_list("channel", flat=True))


def merge_entries(member) -> list[tuple[str, bool | None, str, str]]:
    return list(
        ConsentEntry.objects.filter(member=member, source="merge")
        .order_by("pk")
        .values_list("purpose", "granted", "channel", "wording_version")
    )


@pytest.fixture
def pair(org: Org):
    return org.member_a1_unassigned, org.member_a2  # kept, dropped


def test_the_droppeds_newer_withdrawal_wins_over_the_kepts_grant(org: Org, pair) -> None:
    kept, dropped = pair
    decide(kept, SMS, True, days_ago=10)
    decide(dropped, SMS, False, days_ago=2, channel="store")
    dropped_ledger = list(ConsentEntry.objects.filter(member=dropped).values_list("pk", flat=True))
    merge = member_merge(keep=kept, drop=dropped, actor=org.hq_admin)
    assert merge_entries(kept) == [(SMS, False, "store", "2026-11")]
    assert state(kept) == {SMS: (False, False)}
    assert opt_outs(kept) == {"sms"}
    assert merge.moved["consents"] == [ConsentEntry.objects.get(source="merge").pk]
    # The dropped member's ledger is theirs: nothing moved, nothing added.
    assert list(ConsentEntry.objects.filter(member=dropped).values_list("pk", flat=True)) == (
        dropped_ledger
    )


def test_an_older_grant_never_overrides_a_withdrawal(org: Org, pair) -> None:
    kept, dropped = pair
    decide(kept, SMS, False, days_ago=3)
    decide(dropped, SMS, True, days_ago=20)
    member_merge(keep=kept, drop=dropped, actor=org.hq_admin)
    assert merge_entries(kept) == []
    assert state(kept) == {SMS: (False, False)} and opt_outs(kept) == {"sms"}


def test_a_newer_grant_is_the_latest_decision_and_lifts_the_opt_out(org: Org, pair) -> None:
    kept, dropped = pair
    decide(kept, SMS, False, days_ago=30)
    decide(dropped, SMS, True, days_ago=1)
    member_merge(keep=kept, drop=dropped, actor=org.hq_admin)
    assert merge_entries(kept) == [(SMS, True, "mini_program", "2026-11")]
    assert state(kept) == {SMS: (True, True)} and opt_outs(kept) == set()


def test_a_tie_goes_to_the_withdrawal(org: Org, pair) -> None:
    kept, dropped = pair
    at = timezone.now() - DAY
    consent_record(member=kept, purpose=SMS, granted=True, source="hq", channel="paper", now=at)
    consent_record(member=dropped, purpose=SMS, granted=False, source="hq", channel="phone", now=at)
    member_merge(keep=kept, drop=dropped, actor=org.hq_admin)
    assert state(kept) == {SMS: (False, False)}


def test_purposes_only_one_decided_are_carried_over(org: Org, pair) -> None:
    kept, dropped = pair
    decide(dropped, "profiling", True, days_ago=5, channel="store")
    decide(dropped, "marketing_wecom", False, days_ago=5, channel="wecom")
    decide(kept, "marketing_inbox", False, days_ago=5)
    member_merge(keep=kept, drop=dropped, actor=org.hq_admin)
    assert sorted(merge_entries(kept)) == [
        ("marketing_wecom", False, "wecom", "2026-11"),
        ("profiling", True, "store", "2026-11"),
    ]
    assert state(kept) == {
        "marketing_inbox": (False, False),
        "marketing_wecom": (False, False),
        "profiling": (True, True),
    }
    assert opt_outs(kept) == {"inbox", "wecom"}


def test_an_opt_out_from_before_the_ledger_counts_as_a_withdrawal(org: Org, pair) -> None:
    kept, dropped = pair
    MarketingOptOut.objects.create(member=dropped, channel="")  # no to every channel
    decide(kept, "marketing_inbox", True, days_ago=400)
    member_merge(keep=kept, drop=dropped, actor=org.hq_admin)
    assert sorted(p for p, granted, _c, _v in merge_entries(kept) if granted is False) == [
        "marketing_inbox",
        "marketing_sms",
        "marketing_subscription",
        "marketing_wecom",
    ]
    assert opt_outs(kept) == {"inbox", "sms", "subscription", "wecom"}


def test_the_kepts_old_opt_out_is_not_lifted_by_the_others_grant(org: Org, pair) -> None:
    kept, dropped = pair
    MarketingOptOut.objects.create(member=kept, channel="")
    decide(dropped, SMS, True, days_ago=1)
    member_merge(keep=kept, drop=dropped, actor=org.hq_admin)
    assert merge_entries(kept) == []
    assert opt_outs(kept) == {""}


def test_undo_gives_each_member_their_own_state_back_as_entries(org: Org, pair) -> None:
    kept, dropped = pair
    decide(kept, SMS, True, days_ago=10)
    decide(dropped, SMS, False, days_ago=2)
    decide(dropped, "profiling", True, days_ago=2)
    decide(dropped, "marketing_inbox", False, days_ago=2)
    kept_before, dropped_before = state(kept), state(dropped)
    kept_opt_outs, dropped_opt_outs = opt_outs(kept), opt_outs(dropped)
    merge = member_merge(keep=kept, drop=dropped, actor=org.hq_admin)
    assert len(merge_entries(kept)) == 3
    member_merge_undo(merge=merge, actor=org.hq_admin)
    assert state(kept) == kept_before == {SMS: (True, True)}
    assert state(dropped) == dropped_before
    assert (opt_outs(kept), opt_outs(dropped)) == (kept_opt_outs, dropped_opt_outs)
    # Append-only: the merge's entries stay, followed by the ones giving the state back.
    assert [(p, g) for p, g, _c, _v in merge_entries(kept)][3:] == [
        ("marketing_inbox", None),
        (SMS, True),
        ("profiling", None),
    ]
    history = {s.purpose: s for s in consent_states(member=kept)}
    assert history["profiling"].granted is None and history["profiling"].effective is False


def test_a_decision_made_after_the_merge_stands_and_a_withdrawal_reaches_both(
    org: Org, pair
) -> None:
    kept, dropped = pair
    decide(dropped, SMS, True, days_ago=3)
    decide(dropped, "profiling", True, days_ago=3)
    merge = member_merge(keep=kept, drop=dropped, actor=org.hq_admin)
    consent_record(member=kept, purpose=SMS, granted=False, source="sms_reply", channel="sms")
    consent_record(
        member=kept, purpose="profiling", granted=True, source="hq", channel="back_office"
    )
    member_merge_undo(merge=merge, actor=org.hq_admin)
    assert state(kept) == {
        SMS: (False, False),
        "profiling": (True, True),
    }
    # The withdrawal may have been the dropped person's: it is theirs too now.
    assert state(dropped)[SMS] == (False, False)
    assert opt_outs(dropped) == {"sms"}
    assert state(dropped)["profiling"] == (True, True)
