"""A broadcast's life: drafted, submitted, approved by someone else at head office, sent at
its time outside quiet hours, or cancelled — and every bad step refused, changing nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from campaigns.models import Broadcast, Delivery, Material
from campaigns.services.broadcasts import (
    after_quiet_hours,
    broadcast_approve,
    broadcast_cancel,
    broadcast_submit,
    broadcasts_start_due,
)
from members.models import Segment
from members.services.errors import MemberError
from tests.conftest import Org

pytestmark = pytest.mark.django_db

EVERYONE = {
    "op": "and",
    "rules": [{"field": "gender", "operator": "in", "value": ["f", "m", "u"]}],
}


def draft(org: Org, **kw: Any) -> Broadcast:
    material = Material.objects.create(
        kind="text", title="上新", body=kw.pop("body", "{name}，新品到店")
    )
    return Broadcast.objects.create(
        name="上新",
        channel="inbox",
        material=material,
        segment=Segment.objects.create(name="全部", rules=EVERYONE),
        created_by=kw.pop("created_by", org.hq_operator),
        **kw,
    )


def state(broadcast: Broadcast) -> tuple[str, int]:
    broadcast.refresh_from_db()
    return broadcast.status, Delivery.objects.filter(broadcast=broadcast).count()


def test_draft_submit_approve_and_send(org: Org, django_capture_on_commit_callbacks: Any) -> None:
    broadcast = draft(org)
    broadcast_submit(broadcast=broadcast, actor=org.hq_operator)
    noon = timezone.localtime().replace(hour=12, minute=0)
    with django_capture_on_commit_callbacks() as callbacks:
        broadcast_approve(broadcast=broadcast, actor=org.hq_admin, now=noon)
    assert state(broadcast) == ("sending", 5)
    assert len(callbacks) == 1  # one chunk handed to the senders, after commit


@pytest.mark.parametrize(
    ("who", "code"), [("hq_operator", "own_broadcast"), ("store_manager_a1", "not_an_approver")]
)
def test_bad_approvals_change_nothing(org: Org, who: str, code: str) -> None:
    broadcast = draft(org)
    broadcast_submit(broadcast=broadcast, actor=org.hq_operator)
    with pytest.raises(MemberError) as exc:
        broadcast_approve(broadcast=broadcast, actor=getattr(org, who))
    assert exc.value.code == code
    assert state(broadcast) == ("pending", 0)


def test_bad_drafts_are_refused(org: Org) -> None:
    past = draft(org, scheduled_at=timezone.now() - timedelta(hours=1))
    typo = draft(org, body="{nmae}您好")
    for broadcast, code in ((past, "schedule_in_past"), (typo, "unknown_variable")):
        with pytest.raises(MemberError) as exc:
            broadcast_submit(broadcast=broadcast, actor=org.hq_operator)
        assert exc.value.code == code
        assert state(broadcast) == ("draft", 0)
    with pytest.raises(MemberError) as exc:
        broadcast_approve(broadcast=past, actor=org.hq_admin)
    assert exc.value.code == "not_pending"


def test_quiet_hours_hold_messages_until_morning(org: Org) -> None:
    tz = timezone.get_current_timezone()
    late = datetime(2026, 11, 27, 23, 30, tzinfo=tz)
    early = datetime(2026, 11, 28, 6, 0, tzinfo=tz)
    noon = datetime(2026, 11, 28, 12, 0, tzinfo=tz)
    morning = datetime(2026, 11, 28, 8, 0, tzinfo=tz)
    assert after_quiet_hours(late) == morning
    assert after_quiet_hours(early) == morning
    assert after_quiet_hours(noon) == noon


def test_scheduled_broadcasts_start_when_due_and_cancel_withdraws(org: Org) -> None:
    when = timezone.localtime().replace(hour=12, minute=0) + timedelta(days=1)
    broadcast = draft(org, scheduled_at=when)
    broadcast_submit(broadcast=broadcast, actor=org.hq_operator)
    broadcast_approve(broadcast=broadcast, actor=org.hq_admin)
    assert state(broadcast) == ("approved", 0)
    assert broadcasts_start_due(now=when - timedelta(minutes=1)) == 0
    assert broadcasts_start_due(now=when + timedelta(minutes=1)) == 1
    assert state(broadcast) == ("sending", 5)
    assert broadcast_cancel(broadcast=broadcast, actor=org.hq_admin) == 5
    assert set(Delivery.objects.values_list("status", "reason")) == {("suppressed", "cancelled")}
    with pytest.raises(MemberError) as exc:
        broadcast_cancel(broadcast=broadcast, actor=org.hq_admin)
    assert exc.value.code == "finished"
