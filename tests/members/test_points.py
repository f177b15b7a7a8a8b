"""The points ledger: earn, redeem, reverse, adjust, expire; refusals change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from members.models import LedgerEntry, LotSpend, PointsAccount, PointsKind, PointsLot
from members.services.errors import NotFound
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

pytestmark = pytest.mark.django_db

ACTIVITY = PointsKind.ACTIVITY


def earn(member_id: int, amount: int, key: str, days: int | None = 365, **kw: object):
    expires = timezone.now() + timedelta(days=days) if days is not None else None
    return points_earn(
        member_id=member_id,
        kind=kw.pop("kind", ACTIVITY),
        amount=amount,
        source=kw.pop("source", "signin"),
        external_id=key,
        expires_at=expires,
        **kw,
    )


def state(member_id: int) -> tuple[int, int, int]:
    """(balance, ledger rows, lot rows) of the member's activity account."""
    account = PointsAccount.objects.filter(member_id=member_id, kind=ACTIVITY).first()
    if account is None:
        return (0, 0, 0)
    return (
        account.balance,
        LedgerEntry.objects.filter(account=account).count(),
        PointsLot.objects.filter(account=account).count(),
    )


def lots_left(member_id: int) -> list[int]:
    return list(
        PointsLot.objects.filter(account__member_id=member_id)
        .order_by("id")
        .values_list("remaining", flat=True)
    )


def test_earn_opens_the_account_and_records_entry_lot_and_balance() -> None:
    member = MemberFactory()
    result = earn(member.pk, 30, "m1:2026-11-23")
    assert (result.amount, result.balance, result.duplicate) == (30, 30, False)
    entry = LedgerEntry.objects.get(pk=result.entry_id)
    assert (entry.kind, entry.amount, entry.balance_after) == ("earn", 30, 30)
    assert entry.lot.remaining == 30
    assert state(member.pk) == (30, 1, 1)
    assert points_invariant_violations() == []


def test_a_replayed_earn_changes_nothing_and_returns_the_first_entry() -> None:
    member = MemberFactory()
    first = earn(member.pk, 30, "same")
    again = earn(member.pk, 999, "same")
    assert again.duplicate and again.entry_id == first.entry_id and again.amount == 30
    assert state(member.pk) == (30, 1, 1)


def test_redeem_spends_the_oldest_expiring_lots_first_and_never_expiring_last() -> None:
    member = MemberFactory()
    earn(member.pk, 50, "never", days=None)
    earn(member.pk, 30, "late", days=200)
    earn(member.pk, 20, "soon", days=10)
    result = points_redeem(member_id=member.pk, amount=35, source="mall", external_id="r1")
    assert (result.amount, result.balance) == (-35, 65)
    # never-expiring 50 untouched; the lot expiring in 10 days emptied; 15 from the next.
    assert lots_left(member.pk) == [50, 15, 0]
    spends = sorted(
        LotSpend.objects.filter(entry_id=result.entry_id).values_list("amount", flat=True)
    )
    assert spends == [-20, -15]
    assert points_invariant_violations() == []


def test_redeeming_more_than_the_balance_is_refused_and_writes_nothing() -> None:
    member = MemberFactory()
    earn(member.pk, 40, "a")
    with pytest.raises(PointsError) as refused:
        points_redeem(member_id=member.pk, amount=41, source="mall", external_id="r1")
    assert refused.value.code == "points_insufficient"
    assert "40" in str(refused.value.message)
    assert state(member.pk) == (40, 1, 1)
    assert lots_left(member.pk) == [40]


def test_expired_but_unswept_points_cannot_be_spent() -> None:
    member = MemberFactory()
    earn(member.pk, 40, "old", days=-1)
    earn(member.pk, 10, "new", days=30)
    with pytest.raises(PointsError):
        points_redeem(member_id=member.pk, amount=11, source="mall", external_id="r1")
    assert points_balances(member_id=member.pk).spendable == 10
    assert state(member.pk) == (50, 2, 2)


def test_redeem_without_an_account_or_for_an_unknown_member() -> None:
    member = MemberFactory()
    with pytest.raises(PointsError):
        points_redeem(member_id=member.pk, amount=1, source="mall", external_id="r1")
    with pytest.raises(NotFound):
        points_redeem(member_id=member.pk + 999, amount=1, source="mall", external_id="r2")
    with pytest.raises(NotFound):
        earn(member.pk + 999, 5, "x")
    assert LedgerEntry.objects.count() == 0 and PointsAccount.objects.count() == 0


@pytest.mark.parametrize("amount", [0, -5, 1.5, True, "10"])
def test_bad_amounts_are_refused(amount: object) -> None:
    member = MemberFactory()
    with pytest.raises(PointsError) as refused:
        earn(member.pk, amount, "bad")  # type: ignore[arg-type]
    assert refused.value.code == "points_amount_invalid"
    assert LedgerEntry.objects.count() == 0


def test_a_replayed_redeem_returns_the_first_result_even_after_the_balance_moved() -> None:
    member = MemberFactory()
    earn(member.pk, 50, "a")
    first = points_redeem(member_id=member.pk, amount=50, source="mall", external_id="r1")
    again = points_redeem(member_id=member.pk, amount=50, source="mall", external_id="r1")
    assert again.duplicate and again.entry_id == first.entry_id
    assert state(member.pk) == (0, 2, 1)


def test_reversing_a_redemption_returns_the_points_to_their_lots() -> None:
    member = MemberFactory()
    earn(member.pk, 20, "soon", days=10)
    earn(member.pk, 30, "late", days=200)
    points_redeem(member_id=member.pk, amount=35, source="mall", external_id="r1")
    assert lots_left(member.pk) == [0, 15]
    back = points_reverse(
        source="mall", external_id="r1", reverse_source="mall-cancel", reverse_external_id="r1"
    )
    assert back is not None and (back.amount, back.balance) == (35, 50)
    assert lots_left(member.pk) == [20, 30]
    # Nothing left to return a second time, under any key.
    assert (
        points_reverse(
            source="mall", external_id="r1", reverse_source="mall-cancel", reverse_external_id="r2"
        )
        is None
    )
    assert points_invariant_violations() == []


def test_a_refund_reverses_earned_points_from_their_own_lot_first_and_never_below_zero() -> None:
    member = MemberFactory()
    earn(member.pk, 100, "order:1", source="order", days=300)
    earn(member.pk, 10, "signin", days=5)
    partial = points_reverse(
        source="order",
        external_id="order:1",
        reverse_source="refund",
        reverse_external_id="order:1:a",
        amount=40,
    )
    assert partial is not None and (partial.amount, partial.balance) == (-40, 70)
    assert lots_left(member.pk) == [60, 10]
    points_redeem(member_id=member.pk, amount=65, source="mall", external_id="r1")
    # 60 of the remaining 60 are refundable but only 5 points are left to take back.
    rest = points_reverse(
        source="order",
        external_id="order:1",
        reverse_source="refund",
        reverse_external_id="order:1:b",
    )
    assert rest is not None and (rest.amount, rest.balance) == (-5, 0)
    assert state(member.pk)[0] == 0
    assert points_invariant_violations() == []


def test_adjustments_need_a_reason_and_cannot_take_more_than_spendable() -> None:
    member = MemberFactory()
    earn(member.pk, 10, "a")
    with pytest.raises(PointsError) as no_reason:
        points_adjust(
            member_id=member.pk, kind=ACTIVITY, amount=-5, reason=" ", actor=None, external_id="j1"
        )
    assert no_reason.value.code == "points_reason_required"
    with pytest.raises(PointsError) as too_much:
        points_adjust(
            member_id=member.pk,
            kind=ACTIVITY,
            amount=-11,
            reason="typo",
            actor=None,
            external_id="j2",
        )
    assert too_much.value.code == "points_insufficient"
    assert state(member.pk) == (10, 1, 1)
    taken = points_adjust(
        member_id=member.pk, kind=ACTIVITY, amount=-4, reason="typo", actor=None, external_id="j3"
    )
    assert taken.balance == 6
    assert LedgerEntry.objects.get(pk=taken.entry_id).kind == "adjust"


def test_expiry_sweeps_due_lots_once() -> None:
    member = MemberFactory()
    earn(member.pk, 40, "old", days=-1)
    earn(member.pk, 10, "new", days=30)
    points_redeem(member_id=member.pk, amount=5, source="mall", external_id="r1")
    assert points_expire_due() == 1
    assert state(member.pk) == (5, 4, 2)
    assert lots_left(member.pk) == [0, 5]
    assert points_expire_due() == 0
    assert LedgerEntry.objects.filter(kind="expire").get().amount == -40
    assert points_invariant_violations() == []


def test_the_ledger_is_append_only() -> None:
    member = MemberFactory()
    result = earn(member.pk, 10, "a")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.filter(pk=result.entry_id).update(amount=1000)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.filter(pk=result.entry_id).delete()
    assert LedgerEntry.objects.get(pk=result.entry_id).amount == 10


def test_the_database_refuses_a_negative_balance_whatever_the_code_does() -> None:
    member = MemberFactory()
    earn(member.pk, 10, "a")
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE members_pointsaccount SET balance = -1")
    assert state(member.pk)[0] == 10


def test_balances_report_spendable_and_soon_expiring_points() -> None:
    member = MemberFactory()
    earn(member.pk, 40, "soon", days=10)
    earn(member.pk, 25, "later", days=100)
    earn(member.pk, 7, "growth", kind=PointsKind.GROWTH, source="order", days=None)
    balances = points_balances(member_id=member.pk)
    assert (balances.activity, balances.growth, balances.spendable) == (65, 7, 65)
    assert balances.expiring_soon == 40
    assert balances.expiring_at is not None


def test_a_merge_moves_points_with_their_expiry_and_an_undo_returns_what_is_left(
    org: object,
) -> None:
    from members.services.merge import member_merge, member_merge_undo

    keep, drop = MemberFactory(), MemberFactory()
    earn(keep.pk, 10, "k1", days=100)
    earn(drop.pk, 30, "d1", days=10)
    earn(drop.pk, 5, "d-growth", kind=PointsKind.GROWTH, source="order", days=None)
    merge = member_merge(keep=keep, drop=drop, actor=org.hq_admin)  # type: ignore[attr-defined]
    assert state(keep.pk)[0] == 40 and state(drop.pk)[0] == 0
    # The growth account moved whole; the activity lot kept its 10-day expiry.
    assert PointsAccount.objects.get(kind="growth").member_id == keep.pk
    assert points_balances(member_id=keep.pk).expiring_soon == 30
    points_redeem(member_id=keep.pk, amount=20, source="mall", external_id="after-merge")
    member_merge_undo(merge=merge, actor=org.hq_admin)  # type: ignore[attr-defined]
    # 30 came over and, expiring first, paid the 20 spent since: the other 10 go back.
    assert state(drop.pk)[0] == 10 and state(keep.pk)[0] == 10
    assert PointsAccount.objects.get(kind="growth").member_id == drop.pk
    assert points_invariant_violations() == []
