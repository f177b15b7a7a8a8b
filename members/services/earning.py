"""Earning by rule: which points an event is worth, after bonus periods and caps.

`points_award` is what events (sign-in, review, share, purchases) call. The rule says
how many points and into which account; a running bonus period multiplies them; the
member's daily and monthly caps for that event cut them down. The cap is counted under
the account's lock, so two sign-ins racing each other cannot both slip under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import BonusPeriod, EarnEvent, EarnRule, LedgerEntry, PointsKind
from members.services.points import (
    PointsError,
    PointsResult,
    points_account_lock,
    points_earn,
    points_reverse,
)

# A brand's starting point, also seeded by migration 0007; HQ edits them. (event,
# account, points, points per yuan, daily cap, monthly cap, days valid)
DEFAULT_RULES = [
    ("register", "activity", 100, "0", None, None, 365),
    ("sign_in", "activity", 5, "0", 5, None, 365),
    ("review", "activity", 20, "0", 60, 300, 365),
    ("share", "activity", 5, "0", 20, None, 365),
    ("like", "activity", 1, "0", 10, None, 365),
    ("purchase", "growth", 0, "1", None, None, None),
]


def earn_rules_ensure_defaults() -> None:
    """Create the default rule for every event that has none (existing rules stay)."""
    for event, account, points, per_yuan, daily, monthly, days in DEFAULT_RULES:
        EarnRule.objects.get_or_create(
            event=event,
            defaults={
                "account": account,
                "points": points,
                "points_per_yuan": Decimal(per_yuan),
                "daily_cap": daily,
                "monthly_cap": monthly,
                "valid_days": days,
            },
        )


@dataclass(frozen=True)
class Award:
    event: str
    points: int  # what was credited (0 when a cap or the rule left nothing)
    capped: bool  # a daily or monthly cap cut the award
    multiplier: Decimal
    result: PointsResult | None  # None when nothing was credited


def event_source(event: str) -> str:
    return f"event:{event}"


def _multiplier(event: str, now: datetime) -> Decimal:
    periods = BonusPeriod.objects.filter(starts_at__lte=now, ends_at__gt=now).filter(
        Q(events=[]) | Q(events__contains=[event])
    )
    return max((period.multiplier for period in periods), default=Decimal(1))


def _earned_since(account_id: int, source: str, since: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(sum(amount), 0) FROM members_ledgerentry "
            "WHERE account_id = %s AND source = %s AND created_at >= %s AND amount > 0",
            [account_id, source, since],
        )
        (total,) = cursor.fetchone()
    return int(total)


def points_award(
    *,
    member_id: int,
    event: str,
    reference: str,
    amount_paid: Decimal | None = None,
    now: datetime | None = None,
) -> Award:
    """Credit the points `event` earns, once per (event, reference)."""
    rule = EarnRule.objects.filter(event=event, active=True).first()
    if rule is None:
        raise PointsError("earn_rule_missing", _("No active earn rule for this event."))
    now = now or timezone.now()
    points = Decimal(rule.points)
    if rule.points_per_yuan and amount_paid is not None:
        points += amount_paid * rule.points_per_yuan
    multiplier = _multiplier(event, now)
    if rule.account == PointsKind.ACTIVITY:
        from members.services.tiers import tier_card

        tier = tier_card(member_id=member_id, now=now).tier
        if tier is not None:
            multiplier *= tier.points_multiplier
    wanted = int((points * multiplier).to_integral_value(rounding=ROUND_DOWN))
    source = event_source(event)
    with transaction.atomic(), connection.cursor() as cursor:
        existing = LedgerEntry.objects.filter(source=source, external_id=reference).first()
        if existing is not None:  # a replay: the first award stands
            balance = existing.account.balance
            return Award(
                event,
                existing.amount,
                False,
                multiplier,
                PointsResult(existing.pk, existing.amount, balance, duplicate=True),
            )
        account_id, _balance = points_account_lock(cursor, member_id, rule.account)
        allowed = wanted
        local = timezone.localtime(now)
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if rule.daily_cap is not None:
            allowed = min(allowed, rule.daily_cap - _earned_since(account_id, source, day_start))
        if rule.monthly_cap is not None:
            month_start = day_start.replace(day=1)
            allowed = min(
                allowed, rule.monthly_cap - _earned_since(account_id, source, month_start)
            )
        allowed = max(allowed, 0)
        if allowed <= 0:
            return Award(event, 0, wanted > 0, multiplier, None)
        expires_at = (
            now + timedelta(days=rule.valid_days)
            if rule.valid_days and rule.account == PointsKind.ACTIVITY
            else None
        )
        result = points_earn(
            member_id=member_id,
            kind=rule.account,
            amount=allowed,
            source=source,
            external_id=reference,
            expires_at=expires_at,
            now=now,
        )
        if rule.account == PointsKind.GROWTH:
            from members.services.tiers import tier_evaluate

            tier_evaluate(member_id=member_id, now=now)  # upgrade the moment it is earned
        return Award(event, result.amount, allowed < wanted, multiplier, result)


def order_reference(order_id: int) -> str:
    return f"order:{order_id}"


def points_award_for_order(*, order: Any) -> Award | None:
    """Growth value for a recorded order, by the purchase rule (none when it is off)."""
    if not EarnRule.objects.filter(event=EarnEvent.PURCHASE, active=True).exists():
        return None
    paid = order.amount - order.refunded_amount
    if paid <= 0:
        return None
    return points_award(
        member_id=order.member_id,
        event=EarnEvent.PURCHASE,
        reference=order_reference(order.pk),
        amount_paid=paid,
        now=order.paid_at,
    )


def points_reverse_for_refund(*, order: Any) -> PointsResult | None:
    """Take back the growth value an order earned, in proportion to what is refunded so
    far: after refunds totalling r of an order of a, floor(earned × r / a) has been
    reversed, never more than is left."""
    earned = LedgerEntry.objects.filter(
        source=event_source(EarnEvent.PURCHASE), external_id=order_reference(order.pk)
    ).first()
    if earned is None or order.amount <= 0:
        return None
    target = int(
        (Decimal(earned.amount) * order.refunded_amount / order.amount).to_integral_value(
            rounding=ROUND_DOWN
        )
    )
    already = -sum(LedgerEntry.objects.filter(reverses=earned).values_list("amount", flat=True))
    if target <= already:
        return None
    return points_reverse(
        source=earned.source,
        external_id=earned.external_id,
        reverse_source="refund",
        reverse_external_id=f"{order_reference(order.pk)}:{order.refunded_amount}",
        amount=target - already,
        reason=f"refund of order {order.external_id}",
    )


@dataclass(frozen=True)
class SignIn:
    points: int  # credited now (0 when already signed in today, or capped)
    balance: int  # activity points after it
    already_signed_in: bool


def points_sign_in(*, member_id: int, now: datetime | None = None) -> SignIn:
    """Daily sign-in (签到): the sign-in rule's points, once per member per local day."""
    from members.services.points import points_balances

    now = now or timezone.now()
    award = points_award(
        member_id=member_id,
        event=EarnEvent.SIGN_IN,
        reference=f"{member_id}:{timezone.localdate(now)}",
        now=now,
    )
    already = award.result is not None and award.result.duplicate
    return SignIn(
        0 if already else award.points, points_balances(member_id=member_id).activity, already
    )
