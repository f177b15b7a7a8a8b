"""Lifecycle stages: computed from identities, membership and purchases, with history."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from members.models import (
    IdentityKind,
    LifecycleChange,
    LifecycleSettings,
    LifecycleStage,
    Member,
)
from members.services.lifecycle import lifecycle_refresh_all, member_refresh_stage, stage_for
from members.tasks import refresh_lifecycle_stages
from tests.members.factories import IdentityFactory, MemberFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now()
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("orders", "idle_days", "member", "private", "stage"),
    [
        (0, None, False, False, LifecycleStage.PROSPECT),
        (0, None, False, True, LifecycleStage.PRIVATE),
        (0, None, True, True, LifecycleStage.MEMBER),
        (1, 5, True, True, LifecycleStage.NEW),
        (2, 5, False, False, LifecycleStage.REPEAT),
        (3, 89, True, True, LifecycleStage.REPEAT),
        (4, 10, True, True, LifecycleStage.LOYAL),
        (9, 90, True, True, LifecycleStage.SLEEPING),
        (9, 179, True, True, LifecycleStage.SLEEPING),
        (1, 180, True, True, LifecycleStage.CHURNED),
    ],
)
def test_stage_rules(
    orders: int, idle_days: int | None, member: bool, private: bool, stage: str
) -> None:
    settings = LifecycleSettings(loyal_orders=4, sleeping_days=90, churned_days=180)
    assert (
        stage_for(
            order_count=orders,
            last_order_at=NOW - idle_days * DAY if idle_days is not None else None,
            member_since=NOW if member else None,
            has_private_identity=private,
            settings=settings,
            now=NOW,
        )
        == stage
    )


def _member(
    orders: int,
    idle_days: int | None,
    *,
    since: bool = False,
    wechat: bool = False,
    stage: str = LifecycleStage.PROSPECT,
) -> Member:
    member = MemberFactory(
        order_count=orders,
        total_spent=Decimal(orders * 100),
        last_order_at=NOW - idle_days * DAY if idle_days is not None else None,
        member_since=NOW - 400 * DAY if since else None,
        lifecycle_stage=stage,
    )
    if wechat:
        IdentityFactory(member=member, kind=IdentityKind.UNIONID, value=f"oU{member.pk}")
    return member


def test_periodic_refresh_matches_the_rules_and_records_changes() -> None:
    cases = [
        (_member(0, None), LifecycleStage.PROSPECT),
        (_member(0, None, wechat=True), LifecycleStage.PRIVATE),
        (_member(0, None, since=True, wechat=True), LifecycleStage.MEMBER),
        (_member(1, 3, stage=LifecycleStage.MEMBER), LifecycleStage.NEW),
        (_member(2, 30, stage=LifecycleStage.NEW), LifecycleStage.REPEAT),
        (_member(6, 30, stage=LifecycleStage.REPEAT), LifecycleStage.LOYAL),
        (_member(6, 120, stage=LifecycleStage.LOYAL), LifecycleStage.SLEEPING),
        (_member(6, 400, stage=LifecycleStage.SLEEPING), LifecycleStage.CHURNED),
    ]
    changed = lifecycle_refresh_all(now=NOW, chunk=3)
    assert changed == 7  # the prospect that is still a prospect is left alone
    for member, expected in cases:
        member.refresh_from_db()
        assert member.lifecycle_stage == expected, member.pk
    change = LifecycleChange.objects.get(member=cases[6][0])
    assert (change.from_stage, change.to_stage, change.reason) == ("loyal", "sleeping", "periodic")
    # Run again: nothing to do, no duplicate history.
    assert lifecycle_refresh_all(now=NOW) == 0
    assert LifecycleChange.objects.count() == 7


def test_thresholds_come_from_the_settings() -> None:
    settings = LifecycleSettings.current()
    settings.sleeping_days, settings.churned_days = 30, 60
    settings.save()
    member = _member(1, 45, stage=LifecycleStage.NEW)
    lifecycle_refresh_all(now=NOW)
    member.refresh_from_db()
    assert member.lifecycle_stage == LifecycleStage.SLEEPING


def test_sql_and_python_agree_on_many_members() -> None:
    import random

    rng = random.Random(7)
    members = [
        _member(
            rng.choice((0, 1, 2, 4, 8)),
            rng.choice((None, 1, 60, 100, 200, 500)),
            since=rng.random() < 0.5,
            wechat=rng.random() < 0.5,
        )
        for _ in range(60)
    ]
    lifecycle_refresh_all(now=NOW)
    settings = LifecycleSettings.current()
    for member in members:
        member.refresh_from_db()
        expected = stage_for(
            order_count=member.order_count if member.last_order_at else 0,
            last_order_at=member.last_order_at,
            member_since=member.member_since,
            has_private_identity=member.identities.filter(kind="unionid").exists(),
            settings=settings,
            now=NOW,
        )
        assert member.lifecycle_stage == expected


def test_single_member_refresh_records_the_reason() -> None:
    member = _member(0, None, wechat=True)
    assert member_refresh_stage(member=member, reason="followed") is True
    assert member_refresh_stage(member=member, reason="followed") is False
    change = LifecycleChange.objects.get()
    assert (change.to_stage, change.reason) == (LifecycleStage.PRIVATE, "followed")
    assert member.stage_changed_at is not None


def test_the_periodic_task_runs_the_refresh() -> None:
    member = _member(3, 365, stage=LifecycleStage.REPEAT)
    assert refresh_lifecycle_stages() == 1
    member.refresh_from_db()
    assert member.lifecycle_stage == LifecycleStage.CHURNED


def test_settings_refuse_churn_before_sleep() -> None:
    from django.db import IntegrityError, transaction

    settings = LifecycleSettings.current()
    settings.churned_days = 10
    with pytest.raises(IntegrityError), transaction.atomic():
        settings.save()
