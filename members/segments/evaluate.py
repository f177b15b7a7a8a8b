"""Evaluate rule trees for a staff member: counts, samples, member querysets.

Everything is scoped by `for_user`: a store manager counting "women in Shanghai" counts
their stores' women in Shanghai. Ad-hoc counts run under a statement timeout and say
so when they hit it instead of holding a connection for minutes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member, Tag, Tier
from members.segments.rules import Group, RuleError, parse_rules, referenced_ids
from members.segments.sql import compile_rules
from scrm.org.models import Store


class SegmentTimeout(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            _(
                "Counting took longer than %(seconds)s s and was stopped. Narrow the rules "
                "(fewer OR branches, shorter windows) or save the segment and let the "
                "scheduled refresh count it."
            )
            % {"seconds": f"{seconds:g}"}
        )


def count_timeout_ms() -> int:
    return int(getattr(settings, "SEGMENT_COUNT_TIMEOUT_MS", 10_000))


def check_rules(raw: Any, *, user: Any) -> Group:
    """Parse a rule tree and check that the tags, stores and tiers it names exist and
    that the user may use them; RuleError otherwise."""
    tree = parse_rules(raw)
    _check_known(
        tree, "tags", set(Tag.objects.values_list("pk", flat=True)), _("Unknown tag id %(id)s.")
    )
    _check_known(
        tree, "tier", set(Tier.objects.values_list("pk", flat=True)), _("Unknown tier id %(id)s.")
    )
    _check_known(
        tree,
        "home_store",
        set(Store.objects.for_user(user).values_list("pk", flat=True)),
        _("Unknown store id %(id)s, or not one of your stores."),
    )
    return tree


def _check_known(tree: Group, field_name: str, known: set[int], message: str) -> None:
    missing = referenced_ids(tree, field_name) - known
    if missing:
        raise RuleError(_path_of(tree, field_name, min(missing)), message % {"id": min(missing)})


def _path_of(tree: Group, field_name: str, bad_id: int, path: str = "") -> str:
    prefix = f"{path}." if path else ""
    for index, node in enumerate(tree.rules):
        here = f"{prefix}rules[{index}]"
        if isinstance(node, Group):
            found = _path_of(node, field_name, bad_id, here)
            if found:
                return found
        elif node.field == field_name and node.value and bad_id in node.value:
            return here
    return ""


def rule_members(tree: Group, *, user: Any, now: datetime | None = None) -> QuerySet[Member]:
    compiled = compile_rules(tree, now=now)
    return Member.objects.for_user(user).filter(compiled.expression())


@dataclass
class LiveCount:
    count: int
    sample: list[Member]
    milliseconds: int
    source: str = "database"  # or "snapshot": the live-count engine's column snapshot
    as_of: datetime | None = None


def live_count(
    tree: Group,
    *,
    user: Any,
    store: Store | None = None,
    sample_size: int = 10,
    timeout_ms: int | None = None,
) -> LiveCount:
    """Count and sample the members a tree selects (within one store's members when
    given, as a store's own segment is), under a statement timeout."""
    timeout_ms = timeout_ms or count_timeout_ms()
    started = time.perf_counter()
    from members.segments.engine import ENGINE

    snapshot = ENGINE.current()
    if snapshot is not None and ENGINE.can_evaluate(tree):
        import numpy as np

        total, mask = ENGINE.count(tree, user=user, store_id=store.pk if store else None)
        newest = snapshot.ids[np.flatnonzero(mask)[-sample_size:]][::-1]
        sample = list(
            Member.objects.filter(pk__in=[int(i) for i in newest])
            .select_related("home_store")
            .order_by("-id")
        )
        return LiveCount(
            total,
            sample,
            round((time.perf_counter() - started) * 1000),
            source="snapshot",
            as_of=snapshot.built_at,
        )
    members = rule_members(tree, user=user, now=timezone.now())
    if store is not None:
        members = members.filter(home_store=store)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = %s", [timeout_ms])
            total = members.count()
            sample = list(members.select_related("home_store").order_by("-id")[:sample_size])
    except OperationalError as exc:
        if "statement timeout" in str(exc) or "canceling statement" in str(exc):
            raise SegmentTimeout(timeout_ms / 1000) from None
        raise
    return LiveCount(
        total, sample, round((time.perf_counter() - started) * 1000), as_of=timezone.now()
    )
