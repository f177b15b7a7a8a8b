"""The points mall (积分商城): redeem a reward for points, cancel a redemption.

A redemption takes the reward's row lock, checks what the member may have (window,
tier, per-member limit, stock), spends the points, takes one from stock, issues the
coupon, and records the redemption, all in one transaction: if any step is refused,
none of it happened. Cancelling puts back the points, the stock and revokes the coupon.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import (
    LedgerEntry,
    Redemption,
    RedemptionStatus,
    Reward,
    RewardKind,
)
from members.services.coupons import coupon_issue, coupon_revoke
from members.services.errors import MemberError, NotFound
from members.services.points import points_redeem, points_reverse

SOURCE = "mall"


class MallError(MemberError):
    """A refused redemption; nothing was written."""


def reward_refusal(reward: Reward, *, member_id: int, now: datetime) -> MallError | None:
    """Why this member cannot redeem this reward now (None when they can), stock aside."""
    from members.services.tiers import tier_card

    if not reward.active or (reward.available_from and reward.available_from > now):
        return MallError("reward_unavailable", _("This reward is not available."), status=409)
    if reward.available_until and reward.available_until <= now:
        return MallError("reward_expired", _("This reward is no longer offered."), status=409)
    if reward.min_tier_id is not None:
        tier = tier_card(member_id=member_id, now=now).tier
        if tier is None or tier.rank < reward.min_tier.rank:  # type: ignore[union-attr]
            return MallError(
                "reward_tier_too_low",
                _("This reward is for %(tier)s members and above.")
                % {"tier": reward.min_tier.name},  # type: ignore[union-attr]
                status=403,
            )
    if reward.per_member_limit is not None:
        had = Redemption.objects.filter(
            member_id=member_id, reward=reward, status=RedemptionStatus.DONE
        ).count()
        if had >= reward.per_member_limit:
            return MallError(
                "reward_limit_reached",
                _("You have redeemed this reward the most times allowed (%(limit)s).")
                % {"limit": reward.per_member_limit},
                status=409,
            )
    return None


def reward_redeem(
    *, member_id: int, reward_id: int, key: str, now: datetime | None = None
) -> Redemption:
    """Redeem once per (member, key): a replay returns the first redemption."""
    now = now or timezone.now()
    external_id = f"{member_id}:{key}"
    replay = _replayed(external_id)
    if replay is not None:
        return replay
    with transaction.atomic():
        reward = (
            Reward.objects.select_for_update(of=("self",))
            .select_related("min_tier", "coupon_template")
            .filter(pk=reward_id)
            .first()
        )
        if reward is None:
            raise NotFound("reward_not_found", _("No such reward."))
        replay = _replayed(external_id)  # a concurrent twin finished while we waited
        if replay is not None:
            return replay
        refusal = reward_refusal(reward, member_id=member_id, now=now)
        if refusal is not None:
            raise refusal
        if reward.stock <= 0:
            raise MallError("reward_out_of_stock", _("This reward is out of stock."), status=409)
        spent = points_redeem(
            member_id=member_id,
            amount=reward.points_price,
            source=SOURCE,
            external_id=external_id,
            reason=reward.name,
            now=now,
        )
        Reward.objects.filter(pk=reward.pk).update(stock=F("stock") - 1)
        redemption = Redemption.objects.create(
            member_id=member_id,
            reward=reward,
            points=reward.points_price,
            points_entry_id=spent.entry_id,
            created_at=now,
        )
        if reward.kind == RewardKind.COUPON:
            assert reward.coupon_template is not None
            redemption.coupon = coupon_issue(
                template=reward.coupon_template,
                member_id=member_id,
                source=SOURCE,
                source_ref=f"redemption:{redemption.pk}",
                note=reward.name,
                now=now,
            )
            redemption.save(update_fields=["coupon"])
        return redemption


def _replayed(external_id: str) -> Redemption | None:
    entry = LedgerEntry.objects.filter(source=SOURCE, external_id=external_id).first()
    if entry is None:
        return None
    return Redemption.objects.select_related("reward", "coupon").get(points_entry=entry)


def redemption_cancel(
    *, redemption_id: int, actor: Any = None, member_id: int | None = None, reason: str = ""
) -> Redemption:
    """Give back the points and the stock and revoke the coupon. Refused once the coupon
    has been used. Cancelling twice changes nothing the second time."""
    now = timezone.now()
    with transaction.atomic():
        found = Redemption.objects.select_for_update(of=("self",)).select_related("coupon")
        if member_id is not None:  # a member cancels only their own
            found = found.filter(member_id=member_id)
        redemption = found.filter(pk=redemption_id).first()
        if redemption is None:
            raise NotFound("redemption_not_found", _("No such redemption."))
        if redemption.status == RedemptionStatus.CANCELLED:
            return redemption
        Reward.objects.select_for_update().get(pk=redemption.reward_id)
        if redemption.coupon is not None:
            if redemption.coupon.status != "issued":
                raise MallError(
                    "redemption_coupon_used",
                    _("The coupon from this redemption is %(status)s; it cannot be cancelled.")
                    % {"status": redemption.coupon.get_status_display()},
                    status=409,
                )
            coupon_revoke(
                coupon_id=redemption.coupon.pk,
                reason=reason or _("Redemption cancelled"),
                actor=actor,
                now=now,
            )
        entry = redemption.points_entry
        points_reverse(
            source=entry.source,
            external_id=entry.external_id,
            reverse_source="mall-cancel",
            reverse_external_id=str(redemption.pk),
            reason=reason or _("Redemption cancelled"),
            actor=actor,
            now=now,
        )
        Reward.objects.filter(pk=redemption.reward_id).update(stock=F("stock") + 1)
        redemption.status, redemption.cancelled_at = RedemptionStatus.CANCELLED, now
        redemption.save(update_fields=["status", "cancelled_at"])
        return redemption
