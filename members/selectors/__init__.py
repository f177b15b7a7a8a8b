from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from members.models import (
    Coupon,
    Identity,
    IdentityKind,
    LedgerEntry,
    LifecycleChange,
    Member,
    MemberMerge,
    MergeSuggestion,
    Order,
    Reward,
    SuggestionStatus,
    mask_phone,
)
from members.phones import try_normalize_phone
from scrm.core.pii import phone_digests


def member_search_q(search: str) -> Q:
    """Phone in any format (exact, by digest), name (contains), any identity value
    (exact), or the last four phone digits."""
    query = Q(name__icontains=search)
    identity_values = {search}
    phone = try_normalize_phone(search)
    if phone:
        # Every known key's digest: rows a key rotation has not reached yet are found too.
        digests = phone_digests(phone)
        query |= Q(phone_digest__in=digests)
        identity_values.update(digests)
    elif search.isdigit() and len(search) == 4:
        query |= Q(phone_last4=search)
    query |= Q(pk__in=Identity.objects.filter(value__in=identity_values).values("member_id"))
    return query


def member_list(
    *,
    user: Any,
    search: str = "",
    store_id: int | None = None,
    stage: str = "",
    source: str = "",
    registered_from: date | None = None,
    registered_to: date | None = None,
) -> QuerySet[Member]:
    members: QuerySet[Member] = Member.objects.for_user(user).select_related("home_store", "guide")
    if search:
        members = members.filter(member_search_q(search))
    if store_id:
        members = members.filter(home_store_id=store_id)
    if stage:
        members = members.filter(lifecycle_stage=stage)
    if source:
        members = members.filter(source_channel=source)
    tz = timezone.get_current_timezone()
    if registered_from:
        members = members.filter(created_at__gte=datetime.combine(registered_from, time.min, tz))
    if registered_to:
        members = members.filter(
            created_at__lt=datetime.combine(registered_to + timedelta(days=1), time.min, tz)
        )
    return members.order_by("-created_at", "-pk")


def member_for_profile(*, user: Any, member_id: int) -> Member | None:
    return (
        Member.objects.for_user(user)
        .select_related("home_store", "home_store__region", "guide", "merged_into")
        .filter(pk=member_id)
        .first()
    )


def member_identities(member: Member) -> QuerySet[Identity]:
    return Identity.objects.filter(member=member).order_by("kind", "app", "value")


def member_orders(member: Member, *, limit: int | None = 20) -> list[Order]:
    return list(
        Order.objects.filter(member=member)
        .select_related("store", "guide")
        .prefetch_related("lines")
        .order_by("-paid_at", "-pk")[:limit]
    )


def member_lifecycle_history(member: Member, *, limit: int | None = 20) -> list[LifecycleChange]:
    return list(
        LifecycleChange.objects.filter(member=member).order_by("-changed_at", "-pk")[:limit]
    )


def member_merges(member: Member) -> list[MemberMerge]:
    return list(
        MemberMerge.objects.filter(Q(kept=member) | Q(dropped=member))
        .select_related("merged_by", "undone_by")
        .order_by("-merged_at")
    )


def pool_size(*, user: Any) -> int:
    return Member.objects.for_user(user).count()


def pool_new_since(*, user: Any, days: int = 7) -> int:
    since = timezone.now() - timedelta(days=days)
    return Member.objects.for_user(user).filter(created_at__gte=since).count()


def open_suggestions(*, user: Any) -> QuerySet[MergeSuggestion]:
    """Open suggestions whose two members are both still in the pool and visible to `user`."""
    visible = Member.objects.for_user(user).values("pk")
    members = Member.objects.select_related("home_store").prefetch_related(
        Prefetch("identities", queryset=Identity.objects.order_by("kind", "value"))
    )
    return (
        MergeSuggestion.objects.filter(
            status=SuggestionStatus.OPEN, member_a__in=visible, member_b__in=visible
        )
        .prefetch_related(
            Prefetch("member_a", queryset=members), Prefetch("member_b", queryset=members)
        )
        .order_by("-created_at", "-pk")
    )


def merge_history(*, user: Any) -> QuerySet[MemberMerge]:
    return (
        MemberMerge.objects.filter(kept__in=Member.all_objects.for_user(user).values("pk"))
        .select_related("kept", "dropped", "merged_by", "undone_by")
        .order_by("-merged_at", "-pk")
    )


def points_history(*, member: Member, account: str = "") -> QuerySet[LedgerEntry]:
    """The member's ledger entries, newest first, with the lot (for expiry) joined."""
    entries = LedgerEntry.objects.filter(account__member=member).select_related("account", "lot")
    if account:
        entries = entries.filter(account__kind=account)
    return entries.order_by("-created_at", "-id")


def member_coupons(*, member: Member, status: str = "") -> QuerySet[Coupon]:
    coupons = Coupon.objects.filter(member=member).select_related("template")
    if status:
        coupons = coupons.filter(status=status)
    return coupons.order_by("-issued_at", "-id")


def mall_rewards() -> QuerySet[Reward]:
    """Rewards on offer now (out-of-stock ones included: shown as such)."""
    now = timezone.now()
    return (
        Reward.objects.filter(active=True)
        .filter(Q(available_from__isnull=True) | Q(available_from__lte=now))
        .filter(Q(available_until__isnull=True) | Q(available_until__gt=now))
        .select_related("min_tier")
        .order_by("points_price", "id")
    )


def points_liability(*, user: Any = None) -> dict[str, int]:
    """Activity points outstanding (what members could still redeem) and growth value,
    over the members `user` may see (everyone when no user is given)."""
    from django.db.models import Count, Q, Sum

    from members.models import PointsAccount

    accounts = PointsAccount.objects.all()
    if user is not None:
        accounts = accounts.for_user(user)
    totals = accounts.aggregate(
        activity=Sum("balance", filter=Q(kind="activity")),
        growth=Sum("balance", filter=Q(kind="growth")),
        accounts=Count("id"),
    )
    return {name: int(value or 0) for name, value in totals.items()}


def member_ledger(member: Member, limit: int | None = 20) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(account__member=member)
        .select_related("account", "actor", "lot")
        .order_by("-created_at", "-id")[:limit]
    )


MEMBER_CARD_SQL = """
WITH p AS (
    SELECT COALESCE(max(balance) FILTER (WHERE kind = 'activity'), 0) AS activity,
           COALESCE(max(balance) FILTER (WHERE kind = 'growth'), 0) AS growth,
           max(id) FILTER (WHERE kind = 'activity') AS activity_id,
           max(id) FILTER (WHERE kind = 'growth') AS growth_id
    FROM members_pointsaccount WHERE member_id = %(member)s
), lots AS (
    SELECT COALESCE(sum(remaining) FILTER (
               WHERE expires_at IS NULL OR expires_at > %(now)s), 0) AS spendable,
           COALESCE(sum(remaining) FILTER (
               WHERE expires_at > %(now)s AND expires_at <= %(soon)s), 0) AS expiring,
           min(expires_at) FILTER (
               WHERE expires_at > %(now)s AND expires_at <= %(soon)s) AS expiring_at
    FROM members_pointslot
    WHERE account_id = (SELECT activity_id FROM p) AND remaining > 0
), st AS (
    SELECT CASE WHEN manual_tier_id IS NOT NULL AND manual_until > %(now)s
                THEN manual_tier_id ELSE tier_id END AS tier_id,
           CASE WHEN manual_tier_id IS NOT NULL AND manual_until > %(now)s
                THEN manual_until ELSE valid_until END AS valid_until
    FROM members_membertier WHERE member_id = %(member)s
), tiers AS (
    SELECT t.id, t.name, t.rank, t.threshold, t.window_days, t.discount_rate,
           t.free_delivery, t.priority_service, COALESCE(c.name, '') AS birthday_gift
    FROM members_tier t LEFT JOIN members_coupontemplate c ON c.id = t.birthday_coupon_id
), cur AS (
    SELECT * FROM tiers WHERE id = (SELECT tier_id FROM st)
), nxt AS (
    SELECT * FROM tiers WHERE rank > COALESCE((SELECT rank FROM cur), 0) ORDER BY rank LIMIT 1
), g AS (
    SELECT COALESCE(sum(amount), 0) AS total FROM members_ledgerentry
    WHERE account_id = (SELECT growth_id FROM p)
      AND created_at >= %(now)s - make_interval(days => (SELECT window_days FROM nxt))
      AND kind IN ('earn', 'reverse', 'adjust')
)
SELECT p.activity, p.growth, lots.spendable, lots.expiring, lots.expiring_at,
       (SELECT row_to_json(cur) FROM cur), (SELECT valid_until FROM st),
       (SELECT row_to_json(nxt) FROM nxt), g.total,
       (SELECT count(*) FROM members_coupon
         WHERE member_id = %(member)s AND status = 'issued' AND valid_until > %(now)s)
FROM p, lots, g
"""


def member_card(*, member_id: int, soon_days: int = 30) -> dict[str, Any]:
    """Everything the member card shows beyond the member row, in one query: balances,
    points expiring soon, tier (a hand-set one while it lasts) and progress to the next,
    and usable coupons. Same rules as points_balances and tier_card, read at once."""
    from decimal import Decimal

    import psycopg
    from django.db import connection

    now = timezone.now()
    connection.ensure_connection()
    # Server-side binding and a prepared statement: planning this query cost more than
    # running it (see members.services.points._fast_cursor).
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            MEMBER_CARD_SQL,
            {"member": member_id, "now": now, "soon": now + timedelta(days=soon_days)},
            prepare=True,
        )
        row = cursor.fetchone()
    assert row is not None  # the query always returns one row
    (
        activity,
        growth,
        spendable,
        expiring,
        expiring_at,
        current,
        valid_until,
        nxt,
        in_window,
        coupons,
    ) = row

    def tier(row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        return {
            "name": row["name"],
            "rank": row["rank"],
            "discount_rate": f"{Decimal(str(row['discount_rate'])):.2f}",
            "free_delivery": row["free_delivery"],
            "birthday_gift": row["birthday_gift"],
            "priority_service": row["priority_service"],
        }

    return {
        "points": {
            "activity": int(activity),
            "spendable": int(spendable),
            "growth": int(growth),
            "expiring_soon": int(expiring),
            "expiring_at": expiring_at,
        },
        "tier": {
            "current": tier(current),
            "valid_until": valid_until,
            "next": tier(nxt),
            "growth_in_window": int(in_window) if nxt else 0,
            "to_next": max(0, nxt["threshold"] - int(in_window)) if nxt else 0,
        },
        "coupon_count": int(coupons),
    }


def tiered_member_count(*, user: Any) -> int:
    from members.models import MemberTier

    return MemberTier.objects.for_user(user).filter(tier__isnull=False).count()


# --- tags (step 3) ---------------------------------------------------------------------------


def member_tags(member: Member) -> list[Any]:
    from members.models import MemberTag

    return list(
        MemberTag.objects.filter(member=member)
        .select_related("tag", "tag__group", "added_by")
        .order_by("tag__group__position", "tag__group__name", "tag__name")
    )


def member_tag_log(member: Member, *, limit: int | None = 20) -> list[Any]:
    from members.models import MemberTagLog

    return list(
        MemberTagLog.objects.filter(member=member)
        .select_related("tag", "actor")
        .order_by("-at", "-pk")[:limit]
    )


def tag_coverage(*, user: Any) -> dict[str, int]:
    """Members in the user's scope, and how many of them carry at least one tag."""
    from members.models import MemberTag

    members = Member.objects.for_user(user)
    tagged = members.filter(pk__in=MemberTag.objects.values("member_id")).count()
    total = members.count()
    return {
        "members": total,
        "tagged": tagged,
        "percent": round(100 * tagged / total) if total else 0,
    }


def tag_holder_counts(*, user: Any) -> dict[int, int]:
    """Tag id → how many members the user may see carry it."""
    from django.db.models import Count

    from members.models import MemberTag

    rows: Any = (
        MemberTag.objects.for_user(user)
        .filter(member__merged_into__isnull=True)
        .values("tag_id")
        .annotate(n=Count("id"))
        .values_list("tag_id", "n")
    )
    return dict(rows)


def tag_holders(*, user: Any, tag: Any) -> QuerySet[Any]:
    from members.models import MemberTag

    return (
        MemberTag.objects.for_user(user)
        .filter(tag=tag, member__merged_into__isnull=True)
        .select_related("member", "member__home_store", "added_by")
        .order_by("-added_at", "-pk")
    )


def members_from_list(*, user: Any, entries: list[str]) -> tuple[list[int], list[str]]:
    """Resolve phones (any format) or member ids to members the user may see.
    Returns (member ids, entries that matched nobody)."""
    phones: dict[str, str] = {}  # digest → the entry as written
    # A previous key's digest → the current one (during a key rotation only).
    aliases: dict[str, str] = {}
    ids: dict[int, str] = {}
    unknown: list[str] = []
    for entry in entries:
        phone = try_normalize_phone(entry)
        if phone:
            current, *previous = phone_digests(phone)
            phones[current] = entry
            aliases.update(dict.fromkeys(previous, current))
        elif entry.isdigit() and len(entry) <= 12:
            ids[int(entry)] = entry
        else:
            unknown.append(entry)
    visible = Member.objects.for_user(user)
    found: set[int] = set()
    by_phone: dict[str, int] = {}
    for value, holder_id in (
        Identity.objects.filter(kind=IdentityKind.PHONE, app="", value__in=[*phones, *aliases])
        .annotate(live=Coalesce("member__merged_into_id", "member_id"))
        .values_list("value", "live")
    ):
        if value in phones:  # the current digest's row wins over a previous key's
            by_phone[value] = holder_id
        else:
            by_phone.setdefault(aliases[value], holder_id)
    # Members whose phone holds the number but who have no phone identity yet.
    unheld = [p for p in phones if p not in by_phone]
    unheld += [old for old, current in aliases.items() if current not in by_phone]
    for value, holder_id in Member.objects.filter(phone_digest__in=unheld).values_list(
        "phone_digest", "pk"
    ):
        by_phone.setdefault(aliases.get(value, value), holder_id)
    allowed = set(visible.filter(pk__in=[*by_phone.values(), *ids]).values_list("pk", flat=True))
    for phone, entry in phones.items():
        member_id = by_phone.get(phone)
        if member_id in allowed:
            found.add(member_id)
        else:
            # Shown back to the user: a phone is masked there like everywhere else.
            unknown.append(mask_phone(try_normalize_phone(entry) or ""))
    for member_id, entry in ids.items():
        if member_id in allowed:
            found.add(member_id)
        else:
            unknown.append(entry)
    return sorted(found), unknown


def segment_count(*, user: Any) -> int:
    from members.models import Segment

    return Segment.objects.for_user(user).filter(archived=False).count()


# --- RFM and the value matrix (step 6) ------------------------------------------------------


def rfm_overview(*, user: Any, now: datetime | None = None) -> dict[str, Any]:
    """Counts and spend per RFM class, score distributions and the value matrix, over
    the members the user may see; one pass over the buyers' facts each."""
    from django.db import connection

    from members.models import RfmClass, RfmSettings, ValueCell
    from members.services.rfm import class_sql, score_sql, value_cell_sql

    now = now or timezone.now()
    settings = RfmSettings.current()
    scope_sql, scope_params = (
        Member.objects.for_user(user).order_by().values("pk").query.sql_with_params()
    )
    klass, class_params = class_sql(settings, now)
    r_sql, f_sql, m_sql, score_params = score_sql(settings, now)
    cell, cell_params = value_cell_sql(settings, "m")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {klass} AS k, count(*), COALESCE(sum(r.monetary), 0)
            FROM members_memberrfm r WHERE r.member_id IN ({scope_sql})
            GROUP BY k
            """,
            [*class_params, *scope_params],
        )
        by_class = {k: (n, spend) for k, n, spend in cursor.fetchall()}
        cursor.execute(
            f"""
            SELECT {r_sql}, {f_sql}, {m_sql}, count(*)
            FROM members_memberrfm r WHERE r.member_id IN ({scope_sql})
            GROUP BY 1, 2, 3
            """,
            [*score_params, *scope_params],
        )
        scores = {"r": [0] * 5, "f": [0] * 5, "m": [0] * 5}
        for r, f, m, n in cursor.fetchall():
            scores["r"][r - 1] += n
            scores["f"][f - 1] += n
            scores["m"][m - 1] += n
        cursor.execute(
            f"SELECT {cell} AS c, count(*) FROM ({scope_sql}) s(id) "
            f"JOIN members_member m ON m.id = s.id GROUP BY c",
            [*cell_params, *scope_params],
        )
        cells = dict(cursor.fetchall())
    members = Member.objects.for_user(user).count()
    buyers = sum(n for n, _spend in by_class.values())
    classes = []
    for value, label in RfmClass.choices:
        n, spend = by_class.get(value, (0, Decimal(0)))
        classes.append(
            {
                "code": value,
                "name": label,
                "members": n,
                "spend": spend,
                "average": (spend / n).quantize(Decimal("0.01")) if n else Decimal(0),
                "share": round(100 * n / buyers, 1) if buyers else 0,
            }
        )
    return {
        "settings": settings,
        "members": members,
        "buyers": buyers,
        "no_purchase": members - buyers,
        "classes": classes,
        "scores": scores,
        "cells": [
            {"code": value, "name": label, "members": cells.get(value, 0)}
            for value, label in ValueCell.choices
        ],
    }


def rfm_movements(*, days: int = 30, limit: int | None = 200) -> list[Any]:
    from members.models import RfmMovement

    since = timezone.localdate() - timedelta(days=days)
    return list(RfmMovement.objects.filter(day__gte=since).order_by("-day", "-members")[:limit])
