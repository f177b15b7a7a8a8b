"""Auto-tag rules and profiling consent: a rule on behaviour, purchases or RFM leaves out
members who withdrew profiling consent and takes its tag off them at its next run
(logged with the reason); a rule on facts the member gave tags them regardless; a
re-grant lets the rule tag again; the preview and the rule page count them."""

from __future__ import annotations

import pytest
from django.test import Client

from campaigns.services.consent import consent_record
from members.models import AutoTagRule, Member, MemberTag, MemberTagLog, Tag
from members.services.auto_tags import auto_tag_rule_apply, auto_tag_rule_preview
from members.services.tags import member_tag_add
from members.tasks import auto_tag_members
from tests.conftest import Org
from tests.members.factories import MemberFactory, TagFactory
from tests.members.test_auto_tags import TWICE_IN_90, buy

pytestmark = pytest.mark.django_db

IN_SUZHOU = {"op": "and", "rules": [{"field": "city", "operator": "in", "value": ["苏州"]}]}


def profiling(member: Member, *, granted: bool) -> None:
    consent_record(
        member=member, purpose="profiling", granted=granted, source="hq", channel="back_office"
    )


@pytest.fixture
def people(org: Org) -> dict[str, Member]:
    """Three mothers in 苏州 who bought formula twice in 90 days: one withdrew profiling
    consent, one never answered, one granted it."""
    found = {
        name: MemberFactory(home_store=org.a1, city="苏州")
        for name in ("withdrawn", "unasked", "granted")
    }
    for member in found.values():
        buy(member, 5)
        buy(member, 40)
    profiling(found["withdrawn"], granted=False)
    profiling(found["granted"], granted=True)
    return found


def tagged(tag: Tag) -> set[int]:
    return set(MemberTag.objects.filter(tag=tag).values_list("member_id", flat=True))


def rule_for(rules: dict, *, remove_when_unmatched: bool = True) -> AutoTagRule:
    return AutoTagRule.objects.create(
        name="规则",
        tag=TagFactory(),
        rules=rules,
        active=True,
        remove_when_unmatched=remove_when_unmatched,
    )


def test_a_behaviour_rule_leaves_out_who_withdrew_but_a_plain_fact_rule_does_not(
    people: dict[str, Member],
) -> None:
    behaviour, city = rule_for(TWICE_IN_90), rule_for(IN_SUZHOU)
    preview = auto_tag_rule_preview(rule=behaviour)
    assert (preview.matching, preview.added, preview.removed, preview.left_out) == (2, 2, 0, 1)
    effect = auto_tag_rule_apply(rule=behaviour)
    assert (effect.matching, effect.added, effect.removed, effect.left_out) == (2, 2, 0, 1)
    assert tagged(behaviour.tag) == {people["unasked"].pk, people["granted"].pk}
    # Where they live is a fact they gave: no profiling, so everyone is tagged.
    assert auto_tag_rule_preview(rule=city).left_out == 0
    effect = auto_tag_rule_apply(rule=city)
    assert (effect.matching, effect.added, effect.left_out) == (3, 3, 0)
    assert tagged(city.tag) == {m.pk for m in people.values()}


@pytest.mark.parametrize("remove_when_unmatched", [True, False])
def test_a_withdrawal_takes_the_rule_tag_off_at_the_next_run_with_the_reason(
    people: dict[str, Member], remove_when_unmatched: bool
) -> None:
    rule = rule_for(TWICE_IN_90, remove_when_unmatched=remove_when_unmatched)
    city = rule_for(IN_SUZHOU)
    auto_tag_rule_apply(rule=rule)
    auto_tag_rule_apply(rule=city)
    granted = people["granted"]
    profiling(granted, granted=False)
    # The tag stays until the rule runs again; the preview already counts it out.
    assert granted.pk in tagged(rule.tag)
    preview = auto_tag_rule_preview(rule=rule)
    assert (preview.matching, preview.added, preview.removed) == (1, 0, 1)
    assert (preview.left_out, preview.removed_withdrawn) == (2, 1)
    effect = auto_tag_rule_apply(rule=rule)
    assert (effect.matching, effect.added, effect.removed) == (1, 0, 1)
    assert (effect.left_out, effect.removed_withdrawn) == (2, 1)
    assert tagged(rule.tag) == {people["unasked"].pk}
    removal = MemberTagLog.objects.get(member=granted, tag=rule.tag, action="remove")
    assert (removal.source, removal.source_ref, removal.reason) == (
        "rule",
        str(rule.pk),
        "no_profiling",
    )
    rule.refresh_from_db()
    assert (rule.last_added, rule.last_removed) == (0, 1)
    # A plain-fact rule keeps its tag; running the behaviour rule again changes nothing.
    assert auto_tag_rule_apply(rule=city).removed == 0
    assert granted.pk in tagged(city.tag)
    effect = auto_tag_rule_apply(rule=rule)
    assert (effect.added, effect.removed) == (0, 0)
    assert MemberTagLog.objects.filter(tag=rule.tag, action="remove").count() == 1


def test_a_tag_given_by_staff_stays_after_a_withdrawal(people: dict[str, Member]) -> None:
    rule = rule_for(TWICE_IN_90)
    withdrawn = people["withdrawn"]
    member_tag_add(member=withdrawn, tag=rule.tag)  # by hand: not the rule's to remove
    effect = auto_tag_rule_apply(rule=rule)
    assert (effect.removed, effect.removed_withdrawn) == (0, 0)
    assert tagged(rule.tag) == {m.pk for m in people.values()}
    assert MemberTag.objects.get(member=withdrawn, tag=rule.tag).source == "staff"


def test_a_run_for_one_member_after_an_order_honours_a_withdrawal(
    people: dict[str, Member],
) -> None:
    rule = rule_for(TWICE_IN_90)
    auto_tag_rule_apply(rule=rule)
    unasked, granted = people["unasked"], people["granted"]
    profiling(unasked, granted=False)
    buy(unasked, 1)
    # The task a new order enqueues, for this member only: the others are untouched.
    assert auto_tag_members([unasked.pk]) == 1
    assert tagged(rule.tag) == {granted.pk}
    log = MemberTagLog.objects.get(member=unasked, tag=rule.tag, action="remove")
    assert log.reason == "no_profiling"


def test_consenting_again_lets_the_rule_tag_again(people: dict[str, Member]) -> None:
    rule = rule_for(TWICE_IN_90)
    withdrawn = people["withdrawn"]
    auto_tag_rule_apply(rule=rule)
    assert withdrawn.pk not in tagged(rule.tag)
    profiling(withdrawn, granted=True)
    preview = auto_tag_rule_preview(rule=rule)
    assert (preview.matching, preview.added, preview.left_out) == (3, 1, 0)
    effect = auto_tag_rule_apply(rule=rule)
    assert (effect.added, effect.left_out) == (1, 0)
    assert withdrawn.pk in tagged(rule.tag)
    added = MemberTagLog.objects.get(member=withdrawn, tag=rule.tag, action="add")
    assert (added.source, added.reason) == ("rule", "")


def test_rule_page_and_tag_history_say_who_was_left_out_and_why(
    client: Client, org: Org, people: dict[str, Member]
) -> None:
    rule = rule_for(TWICE_IN_90)
    auto_tag_rule_apply(rule=rule)
    granted = people["granted"]
    profiling(granted, granted=False)
    client.force_login(org.hq_operator)
    page = client.get(f"/hq/tags/rules/{rule.pk}/")
    assert page.status_code == 200
    assert (page.context["preview"].left_out, page.context["preview"].removed_withdrawn) == (2, 1)
    text = page.content.decode()
    assert "2 位符合条件的会员已撤回画像授权，不予打标签" in text
    assert "将失去标签的会员中有 1 位是因此失去" in text
    # A rule on given facts says nothing about profiling.
    city = rule_for(IN_SUZHOU)
    page = client.get(f"/hq/tags/rules/{city.pk}/")
    assert page.status_code == 200 and 'data-testid="rule-profiling"' not in page.content.decode()
    auto_tag_rule_apply(rule=rule)
    profile = client.get(f"/hq/members/{granted.pk}/").content.decode()
    assert "移除 · 已撤回画像授权" in profile
