"""Profiling consent matters: an audience chosen by behaviour, purchases of a product,
RFM or the value matrix is personalisation, so a member who withdrew profiling consent
is not sent to — at planning and again at send time. Audiences by facts the member gave
(gender, city, store …) are not affected."""

from __future__ import annotations

import pytest

from campaigns.models import Broadcast, Delivery, InboxMessage, Material
from campaigns.services.consent import consent_record
from campaigns.services.planning import broadcast_plan, broadcast_preview
from campaigns.services.sending import send_chunk
from members.models import Segment
from members.segments.rules import rules_use_profiling
from tests.campaigns.test_sending import EVERYONE, bounds
from tests.conftest import Org

pytestmark = pytest.mark.django_db

# Everyone: nobody browsed more than 100 products, but it is a behaviour rule.
BY_BEHAVIOUR = {
    "op": "and",
    "rules": [{"field": "event_browse_product", "operator": "lte", "value": 100}],
}


@pytest.mark.parametrize(
    ("rules", "profiling"),
    [
        (EVERYONE, False),
        ({"op": "and", "rules": [{"field": "city", "operator": "in", "value": ["上海"]}]}, False),
        (BY_BEHAVIOUR, True),
        ({"field": "rfm_class", "operator": "in", "value": ["HHH"]}, True),
        (
            {
                "op": "or",
                "rules": [
                    EVERYONE,
                    {
                        "op": "not",
                        "rules": [{"field": "bought", "operator": "sku", "value": "SK-1"}],
                    },
                ],
            },
            True,
        ),
        ({"op": "and", "rules": [{"field": "value_matrix", "operator": "in", "value": []}]}, False),
        ({"op": "xor", "rules": []}, False),
    ],
)
def test_which_rule_trees_are_profiling(rules: dict, profiling: bool) -> None:
    assert rules_use_profiling(rules) is profiling


def inbox_broadcast(org: Org, rules: dict) -> Broadcast:
    segment = Segment.objects.create(name="人群", rules=rules)
    material = Material.objects.create(kind="text", title="上新", body="{name}，新品到店")
    return Broadcast.objects.create(
        name="上新",
        channel="inbox",
        material=material,
        segment=segment,
        created_by=org.hq_operator,
        status="approved",
    )


def profiling(member, granted: bool) -> None:
    consent_record(
        member=member, purpose="profiling", granted=granted, source="hq", channel="back_office"
    )


def outcome(broadcast: Broadcast, member) -> tuple[str, str]:
    row = Delivery.objects.get(broadcast=broadcast, member=member)
    return row.status, row.reason


def test_a_behaviour_audience_leaves_out_who_withdrew_profiling(org: Org) -> None:
    wang, li, zhang = org.member_of_guide_a1, org.member_of_guide_a1_other, org.member_a2
    profiling(wang, granted=True)
    profiling(wang, granted=False)
    profiling(li, granted=False)
    profiling(li, granted=True)  # consented again
    broadcast = inbox_broadcast(org, BY_BEHAVIOUR)
    preview = broadcast_preview(broadcast=broadcast)
    assert (preview.audience, preview.to_send, preview.suppressed) == (5, 4, {"no_profiling": 1})
    broadcast_plan(broadcast=broadcast)
    assert outcome(broadcast, wang) == ("suppressed", "no_profiling")
    assert outcome(broadcast, li) == ("planned", "")
    assert outcome(broadcast, zhang) == ("planned", "")  # never asked is not a withdrawal


def test_an_audience_by_given_facts_is_not_affected(org: Org) -> None:
    wang = org.member_of_guide_a1
    profiling(wang, granted=False)
    broadcast = inbox_broadcast(org, EVERYONE)
    broadcast_plan(broadcast=broadcast)
    assert outcome(broadcast, wang) == ("planned", "")


def test_an_opt_out_is_named_before_profiling(org: Org) -> None:
    wang = org.member_of_guide_a1
    profiling(wang, granted=False)
    consent_record(
        member=wang, purpose="marketing_inbox", granted=False, source="hq", channel="paper"
    )
    broadcast = inbox_broadcast(org, BY_BEHAVIOUR)
    broadcast_plan(broadcast=broadcast)
    assert outcome(broadcast, wang) == ("suppressed", "opted_out")


def test_a_withdrawal_after_planning_is_honoured_at_send_time(org: Org) -> None:
    wang = org.member_of_guide_a1
    broadcast = inbox_broadcast(org, BY_BEHAVIOUR)
    broadcast_plan(broadcast=broadcast)
    assert outcome(broadcast, wang) == ("planned", "")
    profiling(wang, granted=False)
    low, high = bounds(broadcast)
    stats = send_chunk(broadcast_id=broadcast.pk, low=low, high=high)
    assert outcome(broadcast, wang) == ("suppressed", "no_profiling")
    assert (stats.sent, stats.suppressed) == (4, 1)
    assert not InboxMessage.objects.filter(member=wang).exists()
    assert InboxMessage.objects.count() == 4
