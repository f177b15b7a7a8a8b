"""Behaviour events in segment rules: "browsed products at least twice in 7 days"."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from members.segments.engine import ENGINE
from members.segments.evaluate import rule_members
from members.segments.rules import FIELDS, RuleError, parse_rules
from tests.conftest import Org
from touchpoints.models import BehaviourEvent

pytestmark = pytest.mark.django_db


def browse(member: Any, days_ago: float, kind: str = "browse_product") -> None:
    BehaviourEvent.objects.create(
        client_event_id=f"s-{BehaviourEvent.objects.count()}",
        member=member,
        type=kind,
        occurred_at=timezone.now() - timedelta(days=days_ago),
    )


def rule(**condition: Any) -> dict[str, Any]:
    return {"op": "and", "rules": [{"field": "event_browse_product", **condition}]}


def test_event_fields_select_exactly(org: Org) -> None:
    keen, once, stale = org.member_of_guide_a1, org.member_a1_unassigned, org.member_b1
    browse(keen, 1)
    browse(keen, 2)
    browse(keen, 3, kind="like")
    browse(once, 1)
    browse(stale, 10)
    browse(stale, 11)

    def ids(tree: dict[str, Any], user: Any = org.hq_admin) -> set[int]:
        return set(rule_members(parse_rules(tree), user=user).values_list("pk", flat=True))

    assert ids(rule(operator="gte", value=2, days=7)) == {keen.pk}
    assert ids(rule(operator="gte", value=2)) == {keen.pk, stale.pk}
    assert ids(rule(operator="between", value=[1, 1], days=7)) == {once.pk}
    assert ids(rule(operator="gte", value=2), user=org.store_manager_a1) == {keen.pk}
    assert "event_review" in FIELDS and FIELDS["event_review"].windowed
    with pytest.raises(RuleError):
        parse_rules(rule(operator="in", value=[1]))


def test_the_snapshot_hands_event_rules_to_sql() -> None:
    assert not ENGINE.can_evaluate(parse_rules(rule(operator="gte", value=1)))
    gender = {"op": "and", "rules": [{"field": "gender", "operator": "in", "value": ["f"]}]}
    assert ENGINE.can_evaluate(parse_rules(gender))


def test_builder_counts_event_rules(client: Client, org: Org) -> None:
    browse(org.member_of_guide_a1, 1)
    client.force_login(org.hq_operator)
    response = client.post(
        "/hq/segments/count/",
        json.dumps({"rules": rule(operator="gte", value=1, days=30)}),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["count"] == 1
