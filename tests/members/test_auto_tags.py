"""Auto-tag rules: a preview before switching on, set-based tagging with the rule as
source, untagging who no longer matches (only what the rule gave), single-choice
groups, runs for one member after an order, pages and refusals."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from members.models import AutoTagRule, Member, MemberTag, MemberTagLog, TagChoice
from members.services.auto_tags import (
    auto_tag_rule_apply,
    auto_tag_rule_preview,
    auto_tag_rules_apply,
)
from members.services.orders import order_record
from members.services.tags import member_tag_add
from members.tasks import auto_tag_members
from scrm.core.models import AuditEvent
from tests.conftest import Org
from tests.members.factories import MemberFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db
NUMBERS = iter(range(1, 1_000_000))
TWICE_IN_90 = {
    "op": "and",
    "rules": [
        {"field": "bought", "operator": "category", "value": "奶粉", "days": 90, "min_times": 2}
    ],
}


def buy(member: Member, days_ago: int, category: str = "奶粉") -> Any:
    from members.services.orders import LineInput

    return order_record(
        channel="pos",
        external_id=f"AT{next(NUMBERS):06d}",
        member=member,
        paid_at=timezone.now() - timedelta(days=days_ago),
        amount=Decimal("368.00"),
        lines=[
            LineInput(
                sku="MB-1",
                product_name="奶粉",
                quantity=1,
                unit_price=Decimal("368"),
                category=category,
            )
        ],
    )


@pytest.fixture
def mothers(org: Org) -> dict[str, Member]:
    people = {name: MemberFactory(home_store=org.a1) for name in ("twice", "once", "old")}
    buy(people["twice"], 5)
    buy(people["twice"], 40)
    buy(people["once"], 10)
    buy(people["old"], 100)
    buy(people["old"], 120)
    return people


def test_preview_then_apply_tags_matching_members_with_the_rule_as_source(
    mothers: dict[str, Member],
) -> None:
    tag = TagFactory(name="奶粉复购")
    rule = AutoTagRule.objects.create(name="奶粉复购", tag=tag, rules=TWICE_IN_90, active=True)
    member_tag_add(member=mothers["once"], tag=tag)  # by hand: the rule never removes it
    preview = auto_tag_rule_preview(rule=rule)
    assert (preview.matching, preview.added, preview.removed) == (1, 1, 0)
    assert not MemberTag.objects.filter(member=mothers["twice"]).exists()  # preview writes nothing
    effect = auto_tag_rule_apply(rule=rule)
    assert (effect.matching, effect.added, effect.removed) == (1, 1, 0)
    given = MemberTag.objects.get(member=mothers["twice"], tag=tag)
    assert (given.source, given.source_ref) == ("rule", str(rule.pk))
    assert MemberTagLog.objects.filter(member=mothers["twice"], source="rule").count() == 1
    rule.refresh_from_db()
    assert rule.last_run_at is not None and rule.last_added == 1
    # Running again changes nothing.
    assert auto_tag_rule_apply(rule=rule).added == 0


def test_members_who_stop_matching_lose_only_what_the_rule_gave(
    mothers: dict[str, Member],
) -> None:
    tag = TagFactory()
    rule = AutoTagRule.objects.create(name="r", tag=tag, rules=TWICE_IN_90, active=True)
    auto_tag_rule_apply(rule=rule)
    member_tag_add(member=mothers["once"], tag=tag)  # staff's own tag
    rule.rules = {
        "op": "and",
        "rules": [{"field": "bought", "operator": "category", "value": "纸尿裤"}],
    }
    rule.save()
    assert auto_tag_rule_preview(rule=rule).removed == 1
    effect = auto_tag_rule_apply(rule=rule)
    assert (effect.added, effect.removed) == (0, 1)
    assert set(MemberTag.objects.filter(tag=tag).values_list("member_id", flat=True)) == {
        mothers["once"].pk
    }
    rule.remove_when_unmatched = False
    rule.rules = TWICE_IN_90
    rule.save()
    auto_tag_rule_apply(rule=rule)
    rule.rules = {"op": "and", "rules": [{"field": "last_purchase", "operator": "never"}]}
    rule.save()
    assert auto_tag_rule_apply(rule=rule).removed == 0  # kept: the rule does not remove


def test_single_choice_group_tag_replaces_the_others(mothers: dict[str, Member]) -> None:
    stage = TagGroupFactory(name="人生阶段", choice=TagChoice.SINGLE)
    student, mother = TagFactory(group=stage, name="学生"), TagFactory(group=stage, name="宝妈")
    member_tag_add(member=mothers["twice"], tag=student)
    rule = AutoTagRule.objects.create(name="宝妈", tag=mother, rules=TWICE_IN_90, active=True)
    auto_tag_rule_apply(rule=rule)
    assert list(
        MemberTag.objects.filter(member=mothers["twice"]).values_list("tag_id", flat=True)
    ) == [mother.pk]


def test_a_new_order_tags_the_member_at_once_and_inactive_rules_do_nothing(
    mothers: dict[str, Member],
) -> None:
    tag = TagFactory()
    AutoTagRule.objects.create(name="on", tag=tag, rules=TWICE_IN_90, active=True)
    off_tag = TagFactory()
    AutoTagRule.objects.create(name="off", tag=off_tag, rules=TWICE_IN_90, active=False)
    once = mothers["once"]
    buy(once, 1)
    # The task the order enqueues on commit, run here for this member only.
    assert auto_tag_members([once.pk]) == 1
    assert MemberTag.objects.filter(member=once, tag=tag).exists()
    assert not MemberTag.objects.filter(member=mothers["twice"], tag=tag).exists()
    assert not MemberTag.objects.filter(tag=off_tag).exists()
    assert set(auto_tag_rules_apply()) == {AutoTagRule.objects.get(name="on").pk}


def test_rule_pages_preview_save_run_and_refuse(client: Client, org: Org, mothers: Any) -> None:
    tag = TagFactory(name="奶粉复购")
    client.force_login(org.hq_operator)
    assert client.get("/hq/tags/rules/new/").status_code == 200
    bad = client.post(
        "/hq/tags/rules/new/",
        {"name": "坏", "tag": tag.pk, "rules": json.dumps({"op": "and", "rules": []})},
    )
    assert bad.status_code == 200 and bad.context["rule_error_path"] == ""
    assert not AutoTagRule.objects.exists()
    saved = client.post(
        "/hq/tags/rules/new/",
        {
            "name": "奶粉复购",
            "tag": tag.pk,
            "rules": json.dumps(TWICE_IN_90),
            "remove_when_unmatched": "on",
        },
    )
    assert saved.status_code == 302
    rule = AutoTagRule.objects.get()
    assert not rule.active  # switched on only after looking at the preview
    page = client.get(f"/hq/tags/rules/{rule.pk}/")
    assert page.context["preview"].matching == 1
    refused = client.post(f"/hq/tags/rules/{rule.pk}/run/")
    assert refused.status_code == 302 and not MemberTag.objects.filter(tag=tag).exists()
    client.post(
        f"/hq/tags/rules/{rule.pk}/edit/",
        {
            "name": "奶粉复购",
            "tag": tag.pk,
            "rules": json.dumps(TWICE_IN_90),
            "active": "on",
            "remove_when_unmatched": "on",
        },
    )
    assert client.post(f"/hq/tags/rules/{rule.pk}/run/").status_code == 302
    assert MemberTag.objects.filter(tag=tag, source="rule").count() == 1
    assert AuditEvent.objects.filter(action__startswith="auto_tag_rule.").count() == 2
    assert "奶粉复购" in client.get("/hq/tags/").content.decode()
    client.force_login(org.store_manager_a1)
    assert client.get(f"/hq/tags/rules/{rule.pk}/").status_code == 403
    assert client.post(f"/hq/tags/rules/{rule.pk}/run/").status_code == 403
    client.force_login(org.hq_operator)
    assert client.get("/hq/tags/rules/999999/").status_code == 404
