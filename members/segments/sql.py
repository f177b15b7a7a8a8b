"""Rule tree → one SQL condition on the member table.

This is the reference evaluation: segments are materialised, exported and (when
campaigns land) sent from it, and the fast live-count engine is checked against it.
Every condition is two-valued (COALESCE(…, false)) so NOT behaves as people expect: a
member with no birthday is outside "age 20–30", and therefore inside its NOT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils import timezone

from members.segments.rules import Condition, Group

M = '"members_member"'
ACTIVE_ORDER = "o.status <> 'refunded'"


@dataclass
class Compiled:
    sql: str
    params: list[Any]

    def expression(self) -> RawSQL:
        return RawSQL(self.sql, self.params, output_field=BooleanField())


def compile_rules(tree: Group, *, now: datetime | None = None) -> Compiled:
    now = now or timezone.now()
    params: list[Any] = []
    sql = _group(tree, now, params)
    return Compiled(sql, params)


def _group(group: Group, now: datetime, params: list[Any]) -> str:
    parts = [
        _group(node, now, params) if isinstance(node, Group) else _condition(node, now, params)
        for node in group.rules
    ]
    if group.op == "not":
        return f"(NOT {parts[0]})"
    joiner = " AND " if group.op == "and" else " OR "
    return "(" + joiner.join(parts) + ")"


def _condition(c: Condition, now: datetime, params: list[Any]) -> str:
    return f"COALESCE(({COMPILERS[c.field](c, now, params)}), false)"


def _compare(expr: str, c: Condition, params: list[Any]) -> str:
    if c.operator == "gte":
        params.append(c.value)
        return f"{expr} >= %s"
    if c.operator == "lte":
        params.append(c.value)
        return f"{expr} <= %s"
    # `expr` may carry parameters of its own (a window): it must appear exactly once.
    low, high = c.value
    if low is not None and high is not None:
        params.extend([low, high])
        return f"{expr} BETWEEN %s AND %s"
    params.append(low if low is not None else high)
    return f"{expr} >= %s" if low is not None else f"{expr} <= %s"


def _in(column: str) -> Callable[[Condition, datetime, list[Any]], str]:
    def compile_in(c: Condition, now: datetime, params: list[Any]) -> str:
        params.append(list(c.value))
        return f"{M}.{column} = ANY(%s)"

    return compile_in


def years_ago(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a year without one
        return today.replace(year=today.year - years, day=28)


def _age(c: Condition, now: datetime, params: list[Any]) -> str:
    today = timezone.localdate(now)
    low, high = c.value
    clauses = []
    if low is not None:  # at least `low` years old: born on or before this date
        params.append(years_ago(today, int(low)))
        clauses.append(f"{M}.birthday <= %s")
    if high is not None:  # at most `high`: not yet `high + 1`
        params.append(years_ago(today, int(high) + 1))
        clauses.append(f"{M}.birthday > %s")
    return " AND ".join(clauses)


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _member_since(c: Condition, now: datetime, params: list[Any]) -> str:
    if c.operator == "within_days":
        params.append(now - timedelta(days=c.value))
        return f"{M}.member_since >= %s"
    if c.operator == "before_days":
        params.append(now - timedelta(days=c.value))
        return f"{M}.member_since < %s"
    low, high = c.value
    clauses = []
    if low is not None:
        params.append(day_start(low))
        clauses.append(f"{M}.member_since >= %s")
    if high is not None:
        params.append(day_start(high + timedelta(days=1)))
        clauses.append(f"{M}.member_since < %s")
    return " AND ".join(clauses)


def effective_tier_sql(alias: str = "t") -> str:
    """A member's tier as the card shows it: HQ's hand-set tier while it lasts."""
    return (
        f"CASE WHEN {alias}.manual_tier_id IS NOT NULL AND {alias}.manual_until > %s "
        f"THEN {alias}.manual_tier_id ELSE {alias}.tier_id END"
    )


def _tier(c: Condition, now: datetime, params: list[Any]) -> str:
    params.append(now)
    if c.operator == "none":
        return (
            f"NOT EXISTS (SELECT 1 FROM members_membertier t WHERE t.member_id = {M}.id "
            f"AND {effective_tier_sql()} IS NOT NULL)"
        )
    params.append(list(c.value))
    return (
        f"EXISTS (SELECT 1 FROM members_membertier t WHERE t.member_id = {M}.id "
        f"AND {effective_tier_sql()} = ANY(%s))"
    )


def _tags(c: Condition, now: datetime, params: list[Any]) -> str:
    params.append(list(c.value))
    if c.operator == "all":
        params.append(len(c.value))
        return (
            f"(SELECT count(*) FROM members_membertag t WHERE t.member_id = {M}.id "
            f"AND t.tag_id = ANY(%s)) = %s"
        )
    exists = (
        f"EXISTS (SELECT 1 FROM members_membertag t WHERE t.member_id = {M}.id "
        f"AND t.tag_id = ANY(%s))"
    )
    return f"NOT {exists}" if c.operator == "none" else exists


def _points(kind: str) -> Callable[[Condition, datetime, list[Any]], str]:
    def compile_points(c: Condition, now: datetime, params: list[Any]) -> str:
        expr = (
            "COALESCE((SELECT a.balance FROM members_pointsaccount a "
            f"WHERE a.member_id = {M}.id AND a.kind = '{kind}'), 0)"
        )
        return _compare(expr, c, params)

    return compile_points


def _orders(aggregate: str, column: str) -> Callable[[Condition, datetime, list[Any]], str]:
    def compile_orders(c: Condition, now: datetime, params: list[Any]) -> str:
        if c.days is None:
            return _compare(f"{M}.{column}", c, params)
        params.append(now - timedelta(days=c.days))
        expr = (
            f"(SELECT {aggregate} FROM members_order o WHERE o.member_id = {M}.id "
            f"AND {ACTIVE_ORDER} AND o.paid_at >= %s)"
        )
        return _compare(expr, c, params)

    return compile_orders


def _last_purchase(c: Condition, now: datetime, params: list[Any]) -> str:
    if c.operator == "never":
        return f"{M}.last_order_at IS NULL"
    params.append(now - timedelta(days=c.value))
    if c.operator == "within_days":
        return f"{M}.last_order_at >= %s"
    return f"({M}.last_order_at IS NULL OR {M}.last_order_at < %s)"


def _bought(c: Condition, now: datetime, params: list[Any]) -> str:
    column = "l.category" if c.operator == "category" else "l.sku"
    window = ""
    if c.days is not None:
        params.append(now - timedelta(days=c.days))
        window = " AND o.paid_at >= %s"
    params.append(c.value)
    orders = (
        f"FROM members_order o WHERE o.member_id = {M}.id AND {ACTIVE_ORDER}{window} "
        f"AND EXISTS (SELECT 1 FROM members_orderline l WHERE l.order_id = o.id "
        f"AND {column} = %s)"
    )
    if c.min_times <= 1:
        return f"EXISTS (SELECT 1 {orders})"
    params.append(c.min_times)
    return f"(SELECT count(*) {orders}) >= %s"


def _rfm_settings() -> Any:
    from members.models import RfmSettings

    return RfmSettings.current()


def _rfm_class(c: Condition, now: datetime, params: list[Any]) -> str:
    from members.services.rfm import class_sql

    if c.operator == "none":  # no purchase in the window: no facts row
        return f"NOT EXISTS (SELECT 1 FROM members_memberrfm r WHERE r.member_id = {M}.id)"
    klass, class_params = class_sql(_rfm_settings(), now)
    params.extend(class_params)
    params.append(list(c.value))
    return (
        f"EXISTS (SELECT 1 FROM members_memberrfm r WHERE r.member_id = {M}.id "
        f"AND {klass} = ANY(%s))"
    )


def _rfm_score(which: int) -> Callable[[Condition, datetime, list[Any]], str]:
    def compile_score(c: Condition, now: datetime, params: list[Any]) -> str:
        from members.services.rfm import score_sql

        r_sql, f_sql, m_sql, score_params = score_sql(_rfm_settings(), now)
        # score_params hold R's (now, cut) pairs, then F's cuts, then M's cuts.
        expr, used = [
            (r_sql, score_params[:8]),
            (f_sql, score_params[8:12]),
            (m_sql, score_params[12:16]),
        ][which]
        params.extend(used)
        inner: list[Any] = []
        test = _compare("s", c, inner)
        params.extend(inner)
        return (
            f"EXISTS (SELECT 1 FROM members_memberrfm r CROSS JOIN LATERAL "
            f"(SELECT {expr} AS s) score WHERE r.member_id = {M}.id AND {test})"
        )

    return compile_score


def _value_matrix(c: Condition, now: datetime, params: list[Any]) -> str:
    from members.services.rfm import value_cell_sql

    cell, cell_params = value_cell_sql(_rfm_settings(), M)
    params.extend(cell_params)
    params.append(list(c.value))
    return f"{cell} = ANY(%s)"


COMPILERS: dict[str, Callable[[Condition, datetime, list[Any]], str]] = {
    "gender": _in("gender"),
    "age": _age,
    "city": _in("city"),
    "home_store": _in("home_store_id"),
    "tier": _tier,
    "lifecycle_stage": _in("lifecycle_stage"),
    "member_since": _member_since,
    "source_channel": _in("source_channel"),
    "tags": _tags,
    "activity_points": _points("activity"),
    "growth_value": _points("growth"),
    "order_count": _orders("count(*)", "order_count"),
    "order_amount": _orders("COALESCE(sum(o.amount - o.refunded_amount), 0)", "total_spent"),
    "last_purchase": _last_purchase,
    "bought": _bought,
    "rfm_class": _rfm_class,
    "rfm_r": _rfm_score(0),
    "rfm_f": _rfm_score(1),
    "rfm_m": _rfm_score(2),
    "value_matrix": _value_matrix,
}


def register_compiler(name: str, compiler: Callable[[Condition, datetime, list[Any]], str]) -> None:
    COMPILERS[name] = compiler
