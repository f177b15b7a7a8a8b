"""Random sequences of earn / redeem / reverse / adjust / expire / replays keep every
promise of the ledger after every step (Hypothesis stateful testing)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from members.models import LedgerEntry, PointsAccount, PointsKind
from members.services.points import (
    PointsError,
    points_adjust,
    points_balances,
    points_earn,
    points_expire_due,
    points_invariant_violations,
    points_redeem,
    points_reverse,
)
from tests.members.factories import MemberFactory

ACTIVITY = PointsKind.ACTIVITY


def balance_of(member_id: int) -> int:
    account = PointsAccount.objects.filter(member_id=member_id, kind=ACTIVITY).first()
    return account.balance if account else 0


class Ledger(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.counter = 0
        self.earned: list[str] = []
        self.redeemed: list[str] = []
        self.applied: dict[str, int] = {}  # key → signed points it applied

    @initialize()
    def open_member(self) -> None:
        self.member_id = MemberFactory().pk

    def key(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}:{self.member_id}:{self.counter}"

    @rule(
        amount=st.integers(1, 500),
        expires_in_days=st.one_of(st.none(), st.integers(-5, 400)),
    )
    def earn(self, amount: int, expires_in_days: int | None) -> None:
        key = self.key("earn")
        expires = (
            timezone.now() + timedelta(days=expires_in_days)
            if expires_in_days is not None
            else None
        )
        before = balance_of(self.member_id)
        result = points_earn(
            member_id=self.member_id,
            kind=ACTIVITY,
            amount=amount,
            source="event",
            external_id=key,
            expires_at=expires,
        )
        assert result.balance == before + amount
        self.earned.append(key)
        self.applied[key] = amount

    @rule(amount=st.integers(1, 800))
    def redeem(self, amount: int) -> None:
        key = self.key("redeem")
        before = balance_of(self.member_id)
        entries = LedgerEntry.objects.count()
        spendable = points_balances(member_id=self.member_id).spendable
        try:
            result = points_redeem(
                member_id=self.member_id, amount=amount, source="mall", external_id=key
            )
        except PointsError:
            assert amount > spendable
            assert balance_of(self.member_id) == before
            assert LedgerEntry.objects.count() == entries
            return
        assert amount <= spendable
        assert result.balance == before - amount
        self.redeemed.append(key)
        self.applied[key] = -amount

    @precondition(lambda self: self.applied)
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.applied)))
        before = balance_of(self.member_id)
        if key.startswith("earn"):
            result = points_earn(
                member_id=self.member_id, kind=ACTIVITY, amount=1, source="event", external_id=key
            )
        else:
            result = points_redeem(
                member_id=self.member_id, amount=1, source="mall", external_id=key
            )
        assert result.duplicate and result.amount == self.applied[key]
        assert balance_of(self.member_id) == before

    @precondition(lambda self: self.earned or self.redeemed)
    @rule(data=st.data(), part=st.one_of(st.none(), st.integers(1, 300)))
    def reverse(self, data: st.DataObject, part: int | None) -> None:
        original = data.draw(st.sampled_from(self.earned + self.redeemed))
        source = "event" if original.startswith("earn") else "mall"
        before = balance_of(self.member_id)
        result = points_reverse(
            source=source,
            external_id=original,
            reverse_source="reverse",
            reverse_external_id=self.key("reverse"),
            amount=part,
        )
        if result is not None:
            assert result.balance == before + result.amount
            if part is not None:
                assert abs(result.amount) <= part
        else:
            assert balance_of(self.member_id) == before

    @rule(amount=st.integers(-300, 300).filter(bool), reason=st.sampled_from(["", "客服补偿"]))
    def adjust(self, amount: int, reason: str) -> None:
        before = balance_of(self.member_id)
        try:
            result = points_adjust(
                member_id=self.member_id,
                kind=ACTIVITY,
                amount=amount,
                reason=reason,
                actor=None,
                external_id=self.key("adjust"),
            )
        except PointsError as refused:
            assert not reason or (amount < 0 and refused.code == "points_insufficient")
            assert balance_of(self.member_id) == before
            return
        assert reason and result.balance == before + amount

    @rule()
    def expire(self) -> None:
        points_expire_due()
        assert points_expire_due() == 0

    @invariant()
    def ledger_promises_hold(self) -> None:
        assert points_invariant_violations() == []
        assert balance_of(self.member_id) >= 0


@pytest.mark.django_db
def test_random_ledger_histories_keep_every_invariant() -> None:
    Ledger.TestCase.settings = settings(
        max_examples=40,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    Ledger.TestCase().runTest()
