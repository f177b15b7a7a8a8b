"""Lifecycle stages, computed from identities, membership and orders, stored with history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from members.models import (
    Identity,
    IdentityKind,
    LifecycleChange,
    LifecycleSettings,
    LifecycleStage,
    Member,
)
from members.services.bulk import bigint_array

# Having any of these means the person follows the brand in WeChat or added a guide.
PRIVATE_KINDS = (IdentityKind.UNIONID, IdentityKind.OPENID, IdentityKind.WECOM_EXTERNAL)


def stage_for(
    *,
    order_count: int,
    last_order_at: datetime | None,
    member_since: datetime | None,
    has_private_identity: bool,
    settings: LifecycleSettings,
    now: datetime,
) -> str:
    if order_count > 0 and last_order_at is not None:
        idle_days = (now - last_order_at).days
        if idle_days >= settings.churned_days:
            return LifecycleStage.CHURNED
        if idle_days >= settings.sleeping_days:
            return LifecycleStage.SLEEPING
        if order_count >= settings.loyal_orders:
            return LifecycleStage.LOYAL
        if order_count >= 2:
            return LifecycleStage.REPEAT
        return LifecycleStage.NEW
    if member_since is not None:
        return LifecycleStage.MEMBER
    if has_private_identity:
        return LifecycleStage.PRIVATE
    return LifecycleStage.PROSPECT


def member_refresh_stage(*, member: Member, reason: str, now: datetime | None = None) -> bool:
    """Recompute one member's stage; store it and its history row when it changed."""
    now = now or timezone.now()
    stage = stage_for(
        order_count=member.order_count,
        last_order_at=member.last_order_at,
        member_since=member.member_since,
        has_private_identity=Identity.objects.filter(
            member=member, kind__in=PRIVATE_KINDS
        ).exists(),
        settings=LifecycleSettings.current(),
        now=now,
    )
    if stage == member.lifecycle_stage:
        return False
    LifecycleChange.objects.create(
        member=member,
        from_stage=member.lifecycle_stage,
        to_stage=stage,
        reason=reason,
        changed_at=now,
    )
    member.lifecycle_stage = stage
    member.stage_changed_at = now
    member.save(update_fields=["lifecycle_stage", "stage_changed_at", "updated_at"])
    return True


# `computed` is MATERIALIZED so the UPDATE looks up each computed row by primary key.
# Inlined, the planner misjudges how many rows the CASE filter keeps and may scan the
# whole member table once per changed member (seen: 48 s for one 20k-row import chunk).
REFRESH_SQL = """
WITH computed AS MATERIALIZED (
    SELECT m.id, m.lifecycle_stage AS old_stage,
        CASE
            WHEN m.order_count > 0 AND m.last_order_at IS NOT NULL THEN
                CASE
                    WHEN m.last_order_at <= %(now)s - make_interval(days => %(churned)s)
                        THEN 'churned'
                    WHEN m.last_order_at <= %(now)s - make_interval(days => %(sleeping)s)
                        THEN 'sleeping'
                    WHEN m.order_count >= %(loyal)s THEN 'loyal'
                    WHEN m.order_count >= 2 THEN 'repeat'
                    ELSE 'new'
                END
            WHEN m.member_since IS NOT NULL THEN 'member'
            WHEN EXISTS (
                SELECT 1 FROM members_identity i
                WHERE i.member_id = m.id AND i.kind = ANY(%(private_kinds)s)
            ) THEN 'private'
            ELSE 'prospect'
        END AS new_stage
    FROM members_member m
    WHERE m.merged_into_id IS NULL AND {where}
), changed AS (
    UPDATE members_member m
    SET lifecycle_stage = c.new_stage, stage_changed_at = %(now)s, updated_at = %(now)s
    FROM computed c
    WHERE m.id = c.id AND c.old_stage <> c.new_stage
    RETURNING m.id, c.old_stage, c.new_stage
)
INSERT INTO members_lifecyclechange (member_id, from_stage, to_stage, reason, changed_at)
SELECT id, old_stage, new_stage, %(reason)s, %(now)s FROM changed
"""


def lifecycle_refresh_all(
    *, chunk: int = 50_000, now: datetime | None = None, reason: str = "periodic"
) -> int:
    """Recompute every member's stage set-wise, in id ranges (short transactions, no row loop).

    The idle thresholds compare dates, as `stage_for` does with whole days. Safe to run
    twice: a second run finds nothing to change.
    """
    now = now or timezone.now()
    settings = LifecycleSettings.current()
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM members_member")
        low, high = cursor.fetchone()
    if low is None:
        return 0
    params: dict[str, Any] = {
        "now": now,
        "churned": settings.churned_days,
        "sleeping": settings.sleeping_days,
        "loyal": settings.loyal_orders,
        "private_kinds": [str(k) for k in PRIVATE_KINDS],
        "reason": reason,
    }
    changed = 0
    for start in range(low, high + 1, chunk):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                REFRESH_SQL.format(where="m.id >= %(low)s AND m.id < %(high)s"),
                {**params, "low": start, "high": start + chunk},
            )
            changed += cursor.rowcount
    return changed


def lifecycle_refresh_ids(*, ids: list[int], reason: str, now: datetime | None = None) -> int:
    """The same set-based refresh for the given members only (after an import chunk)."""
    if not ids:
        return 0
    settings = LifecycleSettings.current()
    params: dict[str, Any] = {
        "now": now or timezone.now(),
        "churned": settings.churned_days,
        "sleeping": settings.sleeping_days,
        "loyal": settings.loyal_orders,
        "private_kinds": [str(k) for k in PRIVATE_KINDS],
        "reason": reason[:100],
        "ids": bigint_array(ids),
    }
    with connection.cursor() as cursor:
        cursor.execute(REFRESH_SQL.format(where="m.id = ANY(%(ids)s::bigint[])"), params)
        return cursor.rowcount


STATS_AND_STAGE_SQL = """
WITH stats AS (
    SELECT member_id,
           count(*) FILTER (WHERE status <> 'refunded') AS n,
           COALESCE(sum(amount - refunded_amount) FILTER (WHERE status <> 'refunded'), 0)
               AS spent,
           min(paid_at) FILTER (WHERE status <> 'refunded') AS first,
           max(paid_at) FILTER (WHERE status <> 'refunded') AS last
    FROM members_order WHERE member_id = ANY(%(ids)s::bigint[]) GROUP BY member_id
), computed AS MATERIALIZED (
    SELECT m.id, m.lifecycle_stage AS old_stage, s.n, s.spent, s.first, s.last,
        CASE
            WHEN s.n > 0 AND s.last IS NOT NULL THEN
                CASE
                    WHEN s.last <= %(now)s - make_interval(days => %(churned)s) THEN 'churned'
                    WHEN s.last <= %(now)s - make_interval(days => %(sleeping)s) THEN 'sleeping'
                    WHEN s.n >= %(loyal)s THEN 'loyal'
                    WHEN s.n >= 2 THEN 'repeat'
                    ELSE 'new'
                END
            WHEN m.member_since IS NOT NULL THEN 'member'
            WHEN EXISTS (
                SELECT 1 FROM members_identity i
                WHERE i.member_id = m.id AND i.kind = ANY(%(private_kinds)s)
            ) THEN 'private'
            ELSE 'prospect'
        END AS new_stage
    FROM members_member m JOIN stats s ON s.member_id = m.id
    WHERE m.id = ANY(%(ids)s::bigint[])
), updated AS (
    UPDATE members_member m
    SET order_count = c.n, total_spent = c.spent, first_order_at = c.first,
        last_order_at = c.last, lifecycle_stage = c.new_stage,
        stage_changed_at = CASE WHEN c.old_stage <> c.new_stage THEN %(now)s
                                ELSE m.stage_changed_at END,
        updated_at = %(now)s
    FROM computed c
    WHERE m.id = c.id AND m.id = ANY(%(ids)s::bigint[])
    RETURNING m.id, c.old_stage, c.new_stage
)
INSERT INTO members_lifecyclechange (member_id, from_stage, to_stage, reason, changed_at)
SELECT id, old_stage, new_stage, %(reason)s, %(now)s FROM updated WHERE old_stage <> new_stage
"""


def order_stats_and_stage_refresh(
    *, ids: list[int], reason: str, now: datetime | None = None
) -> None:
    """Recount purchase statistics from the orders and restage, in one UPDATE per member
    (bulk order imports: one pass over the members instead of two)."""
    if not ids:
        return
    settings = LifecycleSettings.current()
    with connection.cursor() as cursor:
        cursor.execute(
            STATS_AND_STAGE_SQL,
            {
                "ids": bigint_array(ids),
                "now": now or timezone.now(),
                "churned": settings.churned_days,
                "sleeping": settings.sleeping_days,
                "loyal": settings.loyal_orders,
                "private_kinds": [str(k) for k in PRIVATE_KINDS],
                "reason": reason[:100],
            },
        )
