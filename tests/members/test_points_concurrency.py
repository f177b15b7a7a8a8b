"""Parallel redemptions on real PostgreSQL never spend a point twice or go below zero."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from members.models import LedgerEntry, PointsAccount, PointsKind
from members.services.points import (
    PointsError,
    PointsResult,
    points_earn,
    points_invariant_violations,
    points_redeem,
)
from tests.members.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True)


def in_parallel(calls: list[Callable[[], PointsResult]]) -> list[PointsResult | BaseException]:
    barrier = threading.Barrier(len(calls))
    outcomes: list[PointsResult | BaseException] = [RuntimeError("did not run")] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[index] = calls[index]()
        except BaseException as exc:  # collected and checked by the test
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_twelve_parallel_redemptions_of_one_balance_spend_it_exactly_once() -> None:
    member = MemberFactory()
    for n, days in enumerate((5, 50, 500)):
        points_earn(
            member_id=member.pk,
            kind=PointsKind.ACTIVITY,
            amount=40,
            source="event",
            external_id=f"e{n}",
            expires_at=timezone.now() + timedelta(days=days),
        )
    outcomes = in_parallel(
        [
            lambda n=n: points_redeem(
                member_id=member.pk, amount=25, source="mall", external_id=f"r{n}"
            )
            for n in range(12)
        ]
    )
    done = [o for o in outcomes if isinstance(o, PointsResult)]
    refused = [o for o in outcomes if isinstance(o, PointsError)]
    assert len(done) == 4 and len(refused) == 8, outcomes
    assert sorted(o.balance for o in done) == [20, 45, 70, 95]
    assert PointsAccount.objects.get(member=member).balance == 20
    assert points_invariant_violations() == []


def test_the_same_request_sent_eight_times_at_once_applies_once() -> None:
    member = MemberFactory()
    points_earn(
        member_id=member.pk, kind=PointsKind.ACTIVITY, amount=100, source="event", external_id="e"
    )
    outcomes = in_parallel(
        [
            lambda: points_redeem(member_id=member.pk, amount=30, source="mall", external_id="r")
            for _ in range(8)
        ]
        + [
            lambda: points_earn(
                member_id=member.pk,
                kind=PointsKind.ACTIVITY,
                amount=7,
                source="event",
                external_id="signin",
            )
            for _ in range(8)
        ]
    )
    assert all(isinstance(o, PointsResult) for o in outcomes), outcomes
    results = [o for o in outcomes if isinstance(o, PointsResult)]
    assert sum(not o.duplicate for o in results) == 2
    assert {o.entry_id for o in results[:8]} == {results[0].entry_id}
    assert PointsAccount.objects.get(member=member).balance == 100 - 30 + 7
    assert LedgerEntry.objects.count() == 3
    assert points_invariant_violations() == []


def test_first_earns_for_a_new_member_in_parallel_open_one_account() -> None:
    member = MemberFactory()
    outcomes = in_parallel(
        [
            lambda n=n: points_earn(
                member_id=member.pk,
                kind=PointsKind.ACTIVITY,
                amount=5,
                source="event",
                external_id=f"first-{n}",
            )
            for n in range(6)
        ]
    )
    assert all(isinstance(o, PointsResult) for o in outcomes), outcomes
    assert PointsAccount.objects.filter(member=member).count() == 1
    assert PointsAccount.objects.get(member=member).balance == 30
    assert points_invariant_violations() == []
