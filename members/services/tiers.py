"""Tiers: upgrade the moment growth value crosses a threshold; at the end of a tier's
validity keep it (保级) if enough was earned during it, otherwise start a grace period
and, when that ends, drop one level. HQ may set a tier by hand, always with a reason and
an end date; when it ends the earned tier shows again.

Every change to a member's tier state locks that member's MemberTier row first, so the
periodic review and an upgrade from a purchase cannot interleave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member, MemberTier, Tier, TierChange, TierChangeKind
from members.services.errors import MemberError, NotFound


class TierError(MemberError):
    """A refused tier change; nothing was written."""


def growth_since(member_id: int, since: datetime, *, strictly_after: bool = False) -> int:
    """Net growth value earned since `since` (earnings minus their reversals). Retention
    counts `strictly_after` the tier was reached: the purchase that earned it is spent."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT COALESCE(sum(e.amount), 0)
            FROM members_ledgerentry e
            JOIN members_pointsaccount a ON a.id = e.account_id
            WHERE a.member_id = %s AND a.kind = 'growth'
              AND (e.created_at > %s OR (e.created_at = %s AND NOT %s))
              AND e.kind IN ('earn', 'reverse', 'adjust')
            """,
            [member_id, since, since, strictly_after],
        )
        (total,) = cursor.fetchone()
    return int(total)


def _locked_state(member_id: int) -> MemberTier:
    if not Member.all_objects.filter(pk=member_id).exists():
        raise NotFound("member_not_found", _("No such member."))
    MemberTier.objects.get_or_create(member_id=member_id)
    return (
        MemberTier.objects.select_for_update(of=("self",))
        .select_related("tier")
        .get(member_id=member_id)
    )


def _record(
    state: MemberTier,
    kind: str,
    from_tier: Tier | None,
    to_tier: Tier | None,
    now: datetime,
    *,
    growth: int | None = None,
    reason: str = "",
    actor: Any = None,
) -> None:
    TierChange.objects.create(
        member_id=state.member_id,
        kind=kind,
        from_tier=from_tier,
        to_tier=to_tier,
        growth=growth,
        reason=reason[:200],
        actor=actor if getattr(actor, "pk", None) else None,
        changed_at=now,
    )


def _enter(state: MemberTier, tier: Tier | None, now: datetime) -> None:
    state.tier = tier
    state.achieved_at = now if tier else None
    state.valid_until = now + timedelta(days=tier.valid_days) if tier else None
    state.grace_until = None
    state.save(update_fields=["tier", "achieved_at", "valid_until", "grace_until"])


@transaction.atomic
def tier_evaluate(*, member_id: int, now: datetime | None = None) -> Tier | None:
    """Upgrade at once if the growth value now reaches a higher tier's threshold (each
    tier counts over its own window). During a grace period, earning the retention
    requirement keeps the tier. Returns the earned tier."""
    now = now or timezone.now()
    state = _locked_state(member_id)
    current = state.tier
    best: Tier | None = None
    best_growth = 0
    for tier in Tier.objects.filter(rank__gt=current.rank if current else 0).order_by("-rank"):
        growth = growth_since(member_id, now - timedelta(days=tier.window_days))
        if growth >= tier.threshold:
            best, best_growth = tier, growth
            break
    if best is not None:
        _enter(state, best, now)
        _record(state, TierChangeKind.UPGRADE, current, best, now, growth=best_growth)
        return best
    if current is not None and state.grace_until is not None and state.valid_until is not None:
        period_start = state.valid_until - timedelta(days=current.valid_days)
        growth = growth_since(member_id, period_start, strictly_after=True)
        if growth >= current.retain_threshold:
            _enter(state, current, now)
            _record(state, TierChangeKind.RETAIN, current, current, now, growth=growth)
    return state.tier


@dataclass
class ReviewCounts:
    kept: int = 0
    grace: int = 0
    downgraded: int = 0
    manual_ended: int = 0


def tiers_review(*, now: datetime | None = None, limit: int = 2_000) -> ReviewCounts:
    """The periodic check (Celery beat): tiers whose validity ended are kept, given a
    grace period, or dropped one level; hand-set tiers whose date passed end."""
    now = now or timezone.now()
    counts = ReviewCounts()
    due = list(
        MemberTier.objects.filter(
            Q(tier__isnull=False, valid_until__lte=now, grace_until__isnull=True)
            | Q(grace_until__lte=now)
            | Q(manual_until__lte=now)
        )
        .order_by("member_id")
        .values_list("member_id", flat=True)[:limit]
    )
    for member_id in due:
        with transaction.atomic():
            state = _locked_state(member_id)
            if state.manual_until is not None and state.manual_until <= now:
                _record(
                    state,
                    TierChangeKind.MANUAL_END,
                    state.manual_tier,
                    state.tier,
                    now,
                    reason=state.manual_reason,
                )
                state.manual_tier, state.manual_until, state.manual_reason = None, None, ""
                state.save(update_fields=["manual_tier", "manual_until", "manual_reason"])
                counts.manual_ended += 1
            tier = state.tier
            if tier is None or state.valid_until is None or state.valid_until > now:
                continue
            period_start = state.valid_until - timedelta(days=tier.valid_days)
            growth = growth_since(member_id, period_start, strictly_after=True)
            if growth >= tier.retain_threshold:
                _enter(state, tier, now)
                _record(state, TierChangeKind.RETAIN, tier, tier, now, growth=growth)
                counts.kept += 1
            elif state.grace_until is None and tier.grace_days:
                state.grace_until = state.valid_until + timedelta(days=tier.grace_days)
                state.save(update_fields=["grace_until"])
                _record(state, TierChangeKind.GRACE, tier, tier, now, growth=growth)
                counts.grace += 1
            elif state.grace_until is None or state.grace_until <= now:
                lower = Tier.objects.filter(rank__lt=tier.rank).order_by("-rank").first()
                _enter(state, lower, now)
                _record(state, TierChangeKind.DOWNGRADE, tier, lower, now, growth=growth)
                counts.downgraded += 1
    return counts


@transaction.atomic
def tier_set_manual(
    *, member_id: int, tier: Tier, reason: str, until: datetime, actor: Any
) -> MemberTier:
    """HQ sets a tier by hand until a date, with a reason (audited)."""
    from scrm.core.services import audit_record

    reason = (reason or "").strip()
    if not reason:
        raise TierError("tier_reason_required", _("Say why the tier is set by hand."))
    now = timezone.now()
    if until <= now:
        raise TierError("tier_until_past", _("The end date must be in the future."))
    if until > now + timedelta(days=3 * 366):
        raise TierError("tier_until_too_far", _("A hand-set tier lasts at most three years."))
    state = _locked_state(member_id)
    before = state.manual_tier or state.tier
    state.manual_tier, state.manual_until, state.manual_reason = tier, until, reason[:200]
    state.save(update_fields=["manual_tier", "manual_until", "manual_reason"])
    _record(state, TierChangeKind.MANUAL_SET, before, tier, now, reason=reason, actor=actor)
    audit_record(
        actor=actor,
        action="tier.set_manual",
        target=state.member,
        data={"tier": tier.name, "until": until.isoformat(), "reason": reason},
    )
    return state


@dataclass(frozen=True)
class TierCard:
    tier: Tier | None  # what the member has now (a hand-set tier while it lasts)
    earned: Tier | None
    valid_until: datetime | None
    next_tier: Tier | None
    growth_in_window: int  # counted over the next tier's window
    to_next: int  # growth value still needed for the next tier


def tier_card(*, member_id: int, now: datetime | None = None) -> TierCard:
    now = now or timezone.now()
    state = (
        MemberTier.objects.select_related("tier", "manual_tier").filter(member_id=member_id).first()
    )
    earned = state.tier if state else None
    shown = earned
    valid_until = state.valid_until if state else None
    if state and state.manual_tier and state.manual_until and state.manual_until > now:
        shown, valid_until = state.manual_tier, state.manual_until  # HQ's decision, while it lasts
    next_tier = Tier.objects.filter(rank__gt=shown.rank if shown else 0).order_by("rank").first()
    growth = (
        growth_since(member_id, now - timedelta(days=next_tier.window_days)) if next_tier else 0
    )
    to_next = max(0, next_tier.threshold - growth) if next_tier else 0
    return TierCard(shown, earned, valid_until, next_tier, growth, to_next)
