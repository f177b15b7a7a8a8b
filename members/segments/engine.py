"""The live-count engine: rule trees evaluated over an in-memory column snapshot.

Counting "women 25–35 with ≥ 2 orders in 90 days and tag X but not Y" over a million
members with one EXISTS per condition takes PostgreSQL a second or more; the builder
asks after every keystroke. So each web process keeps a column snapshot of what rules
can ask about — one numpy array per member attribute, the buyers' RFM facts, every
tag's holders, the paid orders sorted by payment time, and per category and SKU the
orders holding it — and
evaluates a tree as boolean masks (AND/OR/NOT are &, |, ~). A condition costs a
vectorised pass over a million values, or over the orders inside its window only.

The snapshot is read with binary COPY (fixed-width rows parsed by numpy, no Python
per row). It is rebuilt in a background thread when older than
SEGMENT_ENGINE_MAX_AGE seconds and the data changed; until the first one is ready,
counts come from SQL. Counts from a snapshot say when it was taken (writes during a
rebuild may land in some arrays and not others until the next one). Sending and
freezing always evaluate in SQL (`members/segments/sql.py`), which this engine is
tested against tree by tree. Each process holds its own snapshot: roughly 250 MB for a
million members and ten million orders.
"""

from __future__ import annotations

import logging
import math
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from members.segments.rules import Condition, Group
from members.segments.sql import day_start, years_ago

log = logging.getLogger(__name__)

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
PG_EPOCH_DATE = date(2000, 1, 1)
NULL_TIME = np.iinfo(np.int64).min  # "no value" for timestamps (microseconds since 2000)
NULL_DATE = np.iinfo(np.int32).min
TAG_MASKS_KEPT = 64  # a megabyte each per million members
CODE_COLUMNS = frozenset({"gender", "city", "stage", "channel"})


def pg_time(moment: datetime) -> int:
    """A datetime as PostgreSQL's binary timestamptz: microseconds since 2000-01-01 UTC."""
    delta = moment - PG_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def pg_date(day: date) -> int:
    return (day - PG_EPOCH_DATE).days


# --- reading columns with binary COPY --------------------------------------------------------

_SIZES = {"int2": 2, "int4": 4, "int8": 8, "float8": 8, "bool": 1}
_DTYPES = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8", "bool": "?"}


def copy_columns(sql: str, columns: list[tuple[str, str]]) -> dict[str, Any]:
    """Run `COPY (sql) TO STDOUT (FORMAT binary)` and return one numpy array per column.

    Every column must be fixed-width and NOT NULL (COALESCE in the query), so each row
    has the same size and whole blocks parse with one `np.frombuffer`."""
    fields = [("count", ">i2")]
    for name, kind in columns:
        fields += [(f"{name}_len", ">i4"), (name, _DTYPES[kind])]
    row_dtype = np.dtype(fields)
    row_size = row_dtype.itemsize
    parts: list[Any] = []
    buffer = bytearray()
    header_done = False

    def parse() -> None:
        nonlocal buffer
        whole = (len(buffer) // row_size) * row_size
        if whole:
            parts.append(np.frombuffer(bytes(buffer[:whole]), dtype=row_dtype))
            del buffer[:whole]

    # The server sends one message per row: gather them into large blocks, then parse each
    # block with a single frombuffer.
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)") as copy,
    ):
        for block in copy:
            buffer += block
            if not header_done:
                if len(buffer) < 19:
                    continue
                # Signature (11 bytes), flags (4), header extension length (4) + extension.
                extension = struct.unpack(">i", bytes(buffer[15:19]))[0]
                del buffer[: 19 + extension]
                header_done = True
            if len(buffer) >= 8 << 20:
                parse()
    parse()
    pending = bytes(buffer)
    if pending not in (b"", b"\xff\xff"):  # the trailer is a field count of -1
        raise ValueError("unexpected data after the last COPY row")
    rows = np.concatenate(parts) if parts else np.zeros(0, dtype=row_dtype)
    return {name: rows[name].astype(_DTYPES[kind].lstrip(">")) for name, kind in columns}


def _codes(sql: str) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {value: index for index, (value,) in enumerate(cursor.fetchall(), start=1)}


# --- the snapshot ------------------------------------------------------------------------------


@dataclass
class Snapshot:
    built_at: datetime
    version: tuple[Any, ...]
    ids: Any  # member ids, sorted; a member's position indexes every member column
    cols: dict[str, Any]
    cities: dict[str, int]
    stages: dict[str, int]
    channels: dict[str, int]
    genders: dict[str, int]
    tag_holders: dict[int, Any]  # tag id -> sorted member positions
    orders: dict[str, Any]  # sorted by paid_at: member (position), paid_at, cents
    bought: dict[str, dict[int, Any]]  # category/sku -> code -> order positions holding it
    categories: dict[str, int]
    skus: dict[str, int]
    seconds: float = 0.0
    # Per-minute results (order windows, RFM scores): only the current minute's are kept.
    _minute_us: int = 0
    _minute_cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    # Tag holders as masks, for the most recently used tags.
    _tag_masks: OrderedDict[int, Any] = field(default_factory=OrderedDict)
    _scope_cache: dict[Any, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def code_limit(self, column: str) -> int:
        """One more than the largest code in a code column (cached)."""
        key = f"limit:{column}"
        limit = self.cols.get(key)
        if limit is None:
            values = self.cols[column]
            limit = int(values.max()) + 1 if len(values) else 1
            self.cols[key] = limit
        return int(limit)

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])

    def positions(self, member_ids: Iterable[int]) -> Any:
        wanted = np.fromiter(member_ids, dtype=np.int64)
        found = np.searchsorted(self.ids, wanted)
        found = np.clip(found, 0, max(self.size - 1, 0))
        return found[self.ids[found] == wanted] if self.size else found[:0]


def data_version() -> tuple[Any, ...]:
    """A cheap fingerprint of everything the snapshot holds; equal means unchanged."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT (SELECT max(updated_at) FROM members_member),
                   (SELECT count(*) FROM members_member),
                   (SELECT max(id) FROM members_order),
                   (SELECT max(id) FROM members_membertaglog),
                   (SELECT count(*) FROM members_membertag),
                   (SELECT max(updated_at) FROM members_pointsaccount),
                   (SELECT count(*) FROM members_memberrfm),
                   (SELECT count(*) FROM members_rfmdirty),
                   (SELECT max(achieved_at) FROM members_membertier),
                   (SELECT count(*) FROM members_membertier)
            """
        )
        row = cursor.fetchone()
    return tuple(row) if row else ()


MEMBER_SQL = """
SELECT m.id,
       COALESCE(g.code, 0)::int2, COALESCE(m.birthday - DATE '2000-01-01', %(null_date)s)::int4,
       COALESCE(c.code, 0)::int4, COALESCE(m.home_store_id, -1)::int8,
       COALESCE(st.code, 0)::int2,
       COALESCE((extract(epoch FROM m.member_since - TIMESTAMPTZ '2000-01-01 00:00:00+00')
                 * 1000000)::int8, %(null_time)s),
       COALESCE(ch.code, 0)::int2,
       COALESCE((extract(epoch FROM m.last_order_at - TIMESTAMPTZ '2000-01-01 00:00:00+00')
                 * 1000000)::int8, %(null_time)s),
       m.order_count::int4, (m.total_spent * 100)::int8,
       COALESCE(t.tier_id, -1)::int8, COALESCE(t.manual_tier_id, -1)::int8,
       COALESCE((extract(epoch FROM t.manual_until - TIMESTAMPTZ '2000-01-01 00:00:00+00')
                 * 1000000)::int8, %(null_time)s),
       COALESCE(pa.balance, 0)::int8, COALESCE(pg.balance, 0)::int8,
       (r.member_id IS NOT NULL), COALESCE(r.frequency, 0)::int4,
       COALESCE((r.monetary * 100)::int8, 0),
       COALESCE((extract(epoch FROM r.last_order_at - TIMESTAMPTZ '2000-01-01 00:00:00+00')
                 * 1000000)::int8, %(null_time)s)
FROM members_member m
LEFT JOIN engine_codes g ON g.kind = 'gender' AND g.value = m.gender
LEFT JOIN engine_codes c ON c.kind = 'city' AND c.value = m.city
LEFT JOIN engine_codes st ON st.kind = 'stage' AND st.value = m.lifecycle_stage
LEFT JOIN engine_codes ch ON ch.kind = 'channel' AND ch.value = m.source_channel
LEFT JOIN members_membertier t ON t.member_id = m.id
LEFT JOIN members_pointsaccount pa ON pa.member_id = m.id AND pa.kind = 'activity'
LEFT JOIN members_pointsaccount pg ON pg.member_id = m.id AND pg.kind = 'growth'
LEFT JOIN members_memberrfm r ON r.member_id = m.id
WHERE m.merged_into_id IS NULL
ORDER BY m.id
"""
MEMBER_COLUMNS = [
    ("id", "int8"),
    ("gender", "int2"),
    ("birthday", "int4"),
    ("city", "int4"),
    ("home_store", "int8"),
    ("stage", "int2"),
    ("member_since", "int8"),
    ("channel", "int2"),
    ("last_order_at", "int8"),
    ("order_count", "int4"),
    ("spent_cents", "int8"),
    ("tier", "int8"),
    ("manual_tier", "int8"),
    ("manual_until", "int8"),
    ("activity", "int8"),
    ("growth", "int8"),
    ("has_rfm", "bool"),
    ("rfm_frequency", "int4"),
    ("rfm_cents", "int8"),
    ("rfm_last", "int8"),
]

ORDER_SQL = """
SELECT o.member_id,
       (extract(epoch FROM o.paid_at - TIMESTAMPTZ '2000-01-01 00:00:00+00') * 1000000)::int8,
       ((o.amount - o.refunded_amount) * 100)::int8, o.id
FROM members_order o JOIN members_member m ON m.id = o.member_id
WHERE o.status <> 'refunded' AND m.merged_into_id IS NULL
ORDER BY 2, o.id
"""
LINE_SQL = """
SELECT l.order_id, COALESCE(c.code, 0)::int4, COALESCE(s.code, 0)::int4
FROM members_orderline l
LEFT JOIN engine_codes c ON c.kind = 'category' AND c.value = l.category
LEFT JOIN engine_codes s ON s.kind = 'sku' AND s.value = l.sku
ORDER BY l.order_id
"""


def build_snapshot() -> Snapshot:
    """Read everything rules can ask about into arrays (one REPEATABLE READ snapshot)."""
    started = time.perf_counter()
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS engine_codes (kind text, value text, code int)"
        )
        cursor.execute("TRUNCATE engine_codes")
        for kind, sql in (
            ("gender", "SELECT DISTINCT gender FROM members_member"),
            ("city", "SELECT DISTINCT city FROM members_member"),
            ("stage", "SELECT DISTINCT lifecycle_stage FROM members_member"),
            ("channel", "SELECT DISTINCT source_channel FROM members_member"),
            ("category", "SELECT DISTINCT category FROM members_orderline"),
            ("sku", "SELECT DISTINCT sku FROM members_orderline"),
        ):
            cursor.execute(
                "INSERT INTO engine_codes SELECT %s, v, row_number() OVER (ORDER BY v) "
                f"FROM ({sql}) AS d(v)",
                [kind],
            )
        cursor.execute("ANALYZE engine_codes")
        cursor.execute("SELECT kind, value, code FROM engine_codes")
        codes: dict[str, dict[str, int]] = {}
        for kind, value, code in cursor.fetchall():
            codes.setdefault(kind, {})[value] = code
    version = data_version()
    members = copy_columns(
        MEMBER_SQL.replace("%(null_date)s", str(NULL_DATE)).replace(
            "%(null_time)s", str(NULL_TIME)
        ),
        MEMBER_COLUMNS,
    )
    ids = members.pop("id")
    position_of = _position_lookup(ids)
    orders = copy_columns(
        ORDER_SQL, [("member", "int8"), ("paid_at", "int8"), ("cents", "int8"), ("id", "int8")]
    )
    order_member = position_of(orders.pop("member"))
    order_ids = orders.pop("id")
    lines = copy_columns(LINE_SQL, [("order", "int8"), ("category", "int4"), ("sku", "int4")])
    # Lines follow their orders' payment order, so a window is one slice of each array.
    by_id = np.argsort(order_ids, kind="stable")
    line_slot = np.searchsorted(order_ids[by_id], lines["order"])
    line_slot = np.clip(line_slot, 0, max(len(order_ids) - 1, 0))
    known = order_ids[by_id][line_slot] == lines["order"] if len(order_ids) else line_slot < 0
    line_order = by_id[line_slot[known]].astype(np.int64)
    # Purchases as an inverted index: per category (and per SKU), the payment-ordered
    # positions of the orders holding it, each order once. A window is then a suffix.
    bought = {
        "category": _inverted(lines["category"][known], line_order),
        "sku": _inverted(lines["sku"][known], line_order),
    }
    del lines, line_slot, known, line_order, by_id
    tags = copy_columns(
        "SELECT tag_id, member_id FROM members_membertag t JOIN members_member m "
        "ON m.id = t.member_id WHERE m.merged_into_id IS NULL ORDER BY tag_id, member_id",
        [("tag", "int8"), ("member", "int8")],
    )
    holders: dict[int, Any] = {}
    if len(tags["tag"]):
        tag_positions = position_of(tags["member"])
        boundaries = np.flatnonzero(np.diff(tags["tag"])) + 1
        for chunk_tags, chunk in zip(
            np.split(tags["tag"], boundaries), np.split(tag_positions, boundaries), strict=True
        ):
            holders[int(chunk_tags[0])] = np.sort(chunk).astype(np.int32)
    snapshot = Snapshot(
        built_at=now,
        version=version,
        ids=ids,
        cols=members,
        cities=codes.get("city", {}),
        stages=codes.get("stage", {}),
        channels=codes.get("channel", {}),
        genders=codes.get("gender", {}),
        tag_holders=holders,
        orders={
            "member": order_member.astype(np.int32),
            "paid_at": orders["paid_at"],
            "cents": orders["cents"],
        },
        bought=bought,
        categories=codes.get("category", {}),
        skus=codes.get("sku", {}),
    )
    snapshot.seconds = time.perf_counter() - started
    return snapshot


def _inverted(codes: Any, orders: Any) -> dict[int, Any]:
    """code -> sorted unique order positions holding it."""
    if not len(codes):
        return {}
    pairs = np.unique(codes.astype(np.int64) << 32 | orders)  # sorts by code, then order
    pair_codes = (pairs >> 32).astype(np.int64)
    pair_orders = (pairs & 0xFFFFFFFF).astype(np.int32)
    boundaries = np.flatnonzero(np.diff(pair_codes)) + 1
    return {
        int(chunk_codes[0]): chunk
        for chunk_codes, chunk in zip(
            np.split(pair_codes, boundaries), np.split(pair_orders, boundaries), strict=True
        )
    }


def _position_lookup(ids: Any) -> Callable[[Any], Any]:
    def lookup(member_ids: Any) -> Any:
        return np.searchsorted(ids, member_ids).astype(np.int64)

    return lookup


# --- evaluation --------------------------------------------------------------------------------


class Evaluator:
    def __init__(self, snapshot: Snapshot, now: datetime) -> None:
        from members.models import RfmSettings

        self.s = snapshot
        self.now = now
        self.now_us = pg_time(now)
        self.rfm = RfmSettings.current()

    def mask(self, group: Group) -> Any:
        masks = [
            self.mask(node) if isinstance(node, Group) else self.condition(node)
            for node in group.rules
        ]
        if group.op == "not":
            return ~masks[0]
        result = masks[0].copy()
        for other in masks[1:]:
            if group.op == "and":
                result &= other
            else:
                result |= other
        return result

    def condition(self, c: Condition) -> Any:
        return getattr(self, f"_{c.field}")(c)

    # helpers
    def _isin(self, column: str, codes: Iterable[int | None]) -> Any:
        wanted = [c for c in codes if c is not None]
        if column in CODE_COLUMNS:  # codes 0..n: the table covers every value, no bounds test
            values = self.s.cols[column]
            table = np.zeros(self.s.code_limit(column), dtype=bool)
            if wanted:
                table[np.array(wanted)] = True
            return table[values]
        return self._member_of(self.s.cols[column], wanted)

    def _member_of(self, values: Any, wanted: list[int]) -> Any:
        """values ∈ wanted. Codes and ids are small: a lookup table indexed by the value
        is one gather (np.isin sorts, several times slower)."""
        if not wanted:
            return np.zeros(values.shape[0], dtype=bool)
        top = int(max(wanted))
        if min(wanted) < 0 or top > 10_000_000:
            return np.isin(values, np.array(wanted))
        table = np.zeros(top + 2, dtype=bool)
        table[np.array(wanted)] = True
        # Values outside the table (larger ids, -1 for "none") land on the last, False slot.
        index = np.where((values >= 0) & (values <= top), values, top + 1)
        return table[index]

    def _compare(self, values: Any, c: Condition, scale: int = 1) -> Any:
        """`values` (whole numbers, in units of 1/scale) against the condition's bounds:
        a lower bound rounds up and an upper bound down, exactly as SQL compares."""

        def low(bound: Any) -> int:
            return math.ceil(Decimal(str(bound)) * scale)

        def high(bound: Any) -> int:
            return math.floor(Decimal(str(bound)) * scale)

        if c.operator == "gte":
            return values >= low(c.value)
        if c.operator == "lte":
            return values <= high(c.value)
        start, end = c.value
        result = np.ones(values.shape[0], dtype=bool)
        if start is not None:
            result &= values >= low(start)
        if end is not None:
            result &= values <= high(end)
        return result

    def _since(self, days: int) -> int:
        return pg_time(self.now - timedelta(days=days))

    def _window(self, days: int) -> tuple[Any, Any]:
        """Per member: active orders and cents paid within `days` (cached for this `now`)."""
        key = ("window", days)
        cached = self._cached(key)
        if cached is None:
            start = int(np.searchsorted(self.s.orders["paid_at"], self._since(days), "left"))
            # paid_at >= since, as SQL does
            members = self.s.orders["member"][start:]
            counts = np.bincount(members, minlength=self.s.size)
            cents = np.bincount(
                members, weights=self.s.orders["cents"][start:], minlength=self.s.size
            )
            cached = self._keep(key, (counts, cents))
        return cached

    # attributes
    def _gender(self, c: Condition) -> Any:
        return self._isin("gender", (self.s.genders.get(v) for v in c.value))

    def _city(self, c: Condition) -> Any:
        return self._isin("city", (self.s.cities.get(v) for v in c.value))

    def _lifecycle_stage(self, c: Condition) -> Any:
        return self._isin("stage", (self.s.stages.get(v) for v in c.value))

    def _source_channel(self, c: Condition) -> Any:
        return self._isin("channel", (self.s.channels.get(v) for v in c.value))

    def _home_store(self, c: Condition) -> Any:
        return self._isin("home_store", c.value)

    def _age(self, c: Condition) -> Any:
        today = timezone.localdate(self.now)
        birthday = self.s.cols["birthday"]
        result = birthday != NULL_DATE
        low, high = c.value
        if low is not None:
            result &= birthday <= pg_date(years_ago(today, int(low)))
        if high is not None:
            result &= birthday > pg_date(years_ago(today, int(high) + 1))
        return result

    def _member_since(self, c: Condition) -> Any:
        since = self.s.cols["member_since"]
        known = since != NULL_TIME
        if c.operator == "within_days":
            return known & (since >= self._since(c.value))
        if c.operator == "before_days":
            return known & (since < self._since(c.value))
        low, high = c.value
        result = known.copy()
        if low is not None:
            result &= since >= pg_time(day_start(low))
        if high is not None:
            result &= since < pg_time(day_start(high + timedelta(days=1)))
        return result

    def _tier(self, c: Condition) -> Any:
        effective = self._cached(("tier",))
        if effective is None:
            cols = self.s.cols
            manual = (cols["manual_tier"] != -1) & (cols["manual_until"] > self.now_us)
            effective = self._keep(("tier",), np.where(manual, cols["manual_tier"], cols["tier"]))
        if c.operator == "none":
            return effective == -1
        return self._member_of(effective, list(c.value))

    def _tag_mask(self, tag_id: int) -> Any:
        """Holders of a tag as a mask, kept for the snapshot's most used tags."""
        masks = self.s._tag_masks
        with self.s.lock:
            mask = masks.get(tag_id)
            if mask is not None:
                masks.move_to_end(tag_id)
                return mask
        mask = np.zeros(self.s.size, dtype=bool)
        holders = self.s.tag_holders.get(tag_id)
        if holders is not None:
            mask[holders] = True
        with self.s.lock:
            masks[tag_id] = mask
            while len(masks) > TAG_MASKS_KEPT:
                masks.popitem(last=False)
        return mask

    def _tags(self, c: Condition) -> Any:
        masks = [self._tag_mask(int(tag_id)) for tag_id in c.value]
        result = masks[0].copy()
        for other in masks[1:]:
            if c.operator == "all":
                result &= other
            else:
                result |= other
        return ~result if c.operator == "none" else result

    def _activity_points(self, c: Condition) -> Any:
        return self._compare(self.s.cols["activity"], c)

    def _growth_value(self, c: Condition) -> Any:
        return self._compare(self.s.cols["growth"], c)

    def _order_count(self, c: Condition) -> Any:
        if c.days is None:
            return self._compare(self.s.cols["order_count"], c)
        return self._compare(self._window(c.days)[0], c)

    def _order_amount(self, c: Condition) -> Any:
        if c.days is None:
            return self._compare(self.s.cols["spent_cents"], c, scale=100)
        return self._compare(self._window(c.days)[1], c, scale=100)

    def _last_purchase(self, c: Condition) -> Any:
        last = self.s.cols["last_order_at"]
        if c.operator == "never":
            return last == NULL_TIME
        since = self._since(c.value)
        if c.operator == "within_days":
            return (last != NULL_TIME) & (last >= since)
        return (last == NULL_TIME) | (last < since)

    def _bought(self, c: Condition) -> Any:
        codes = self.s.categories if c.operator == "category" else self.s.skus
        code = codes.get(c.value)
        if code is None:
            return np.zeros(self.s.size, dtype=bool)
        holding = self.s.bought[c.operator].get(code)
        if holding is None:
            return np.zeros(self.s.size, dtype=bool)
        if c.days is not None:
            order_start = int(np.searchsorted(self.s.orders["paid_at"], self._since(c.days)))
            holding = holding[int(np.searchsorted(holding, order_start)) :]
        buyers = self.s.orders["member"][holding]
        if c.min_times <= 1:
            result = np.zeros(self.s.size, dtype=bool)
            result[buyers] = True
            return result
        return np.bincount(buyers, minlength=self.s.size) >= c.min_times

    # RFM and the value matrix
    def _scores(self) -> tuple[Any, Any, Any]:
        key = ("scores", self.rfm.scored_at.timestamp() if self.rfm.scored_at else 0)
        cached = self._cached(key)
        if cached is None:
            cached = self._keep(key, self._compute_scores())
        return cached

    def _cached(self, key: tuple[Any, ...]) -> Any:
        with self.s.lock:
            if self.s._minute_us != self.now_us:
                return None
            return self.s._minute_cache.get(key)

    def _keep(self, key: tuple[Any, ...], value: Any) -> Any:
        """Remember a result for this `now`; results for an earlier `now` are dropped."""
        with self.s.lock:
            if self.s._minute_us != self.now_us:
                self.s._minute_us = self.now_us
                self.s._minute_cache = {}
            self.s._minute_cache[key] = value
        return value

    def _compute_scores(self) -> tuple[Any, Any, Any]:
        cols = self.s.cols
        last = np.where(cols["has_rfm"], cols["rfm_last"], self.now_us)  # no overflow on NULL
        days = (self.now_us - last) // 86_400_000_000
        r = 5 - sum((days > cut).astype(np.int8) for cut in self.rfm.r_cuts)
        f = 1 + sum((cols["rfm_frequency"] > cut).astype(np.int8) for cut in self.rfm.f_cuts)
        m = 1 + sum(
            (cols["rfm_cents"] > round(float(cut) * 100)).astype(np.int8) for cut in self.rfm.m_cuts
        )
        return r, f, m

    def _rfm_class(self, c: Condition) -> Any:
        has = self.s.cols["has_rfm"]
        if c.operator == "none":
            return ~has
        high = self.rfm.high_score
        key = ("class", self.rfm.scored_at.timestamp() if self.rfm.scored_at else 0, high)
        code = self._cached(key)
        if code is None:
            r, f, m = self._scores()
            code = (r >= high).astype(np.int8) * 4 + (f >= high) * 2 + (m >= high)
            code = self._keep(key, code.astype(np.int8))
        wanted = [
            (klass[0] == "H") * 4 + (klass[1] == "H") * 2 + (klass[2] == "H") for klass in c.value
        ]
        table = np.zeros(8, dtype=bool)
        table[np.array(wanted)] = True
        return has & table[code]

    def _rfm_score(self, which: int, c: Condition) -> Any:
        return self.s.cols["has_rfm"] & self._compare(self._scores()[which], c)

    def _rfm_r(self, c: Condition) -> Any:
        return self._rfm_score(0, c)

    def _rfm_f(self, c: Condition) -> Any:
        return self._rfm_score(1, c)

    def _rfm_m(self, c: Condition) -> Any:
        return self._rfm_score(2, c)

    def _value_matrix(self, c: Condition) -> Any:
        active = self.s.cols["activity"] >= self.rfm.activity_high
        spends = self.s.cols["growth"] >= self.rfm.growth_high
        cells = {
            "core": active & spends,
            "fans": active & ~spends,
            "quiet_spenders": ~active & spends,
            "ordinary": ~active & ~spends,
        }
        result = np.zeros(self.s.size, dtype=bool)
        for cell in c.value:
            result |= cells[cell]
        return result


# --- the process-wide snapshot ---------------------------------------------------------------


class Engine:
    """Holds this process's snapshot and rebuilds it in the background when stale."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self._building = threading.Lock()
        self.last_error: str = ""

    def max_age(self) -> float:
        return float(getattr(settings, "SEGMENT_ENGINE_MAX_AGE", 300))

    def enabled(self) -> bool:
        return bool(getattr(settings, "SEGMENT_ENGINE", True))

    def current(self, *, wait: bool = False) -> Snapshot | None:
        """The snapshot to count with; starts a rebuild when missing or stale. With
        `wait`, builds in this thread when there is none yet."""
        if not self.enabled():
            return None
        snapshot = self.snapshot
        stale = snapshot is None or (
            (timezone.now() - snapshot.built_at).total_seconds() > self.max_age()
        )
        if snapshot is None and wait:
            self.rebuild()
            return self.snapshot
        if stale:
            self._rebuild_in_background()
        return snapshot

    def rebuild(self, *, force: bool = True) -> Snapshot | None:
        with self._building:
            if not force and self.snapshot is not None and data_version() == self.snapshot.version:
                self.snapshot.built_at = timezone.now()  # unchanged: still current
                return self.snapshot
            self.snapshot = build_snapshot()
            log.info(
                "segment engine: %s members in %.1f s", self.snapshot.size, self.snapshot.seconds
            )
            return self.snapshot

    def _rebuild_in_background(self) -> None:
        if self._building.locked():
            return

        def run() -> None:
            try:
                self.rebuild(force=False)
                self.last_error = ""
            except Exception as exc:  # counts fall back to SQL; the page says why
                log.exception("segment engine rebuild failed")
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                connections.close_all()

        threading.Thread(target=run, name="segment-engine", daemon=True).start()

    @staticmethod
    def can_evaluate(tree: Group) -> bool:
        """Whether the snapshot holds every field the tree names (fields other apps
        register, like behaviour events, are counted in SQL instead)."""
        return all(hasattr(Evaluator, f"_{field}") for field in fields_in(tree))

    def count(
        self,
        tree: Group,
        *,
        user: Any,
        store_id: int | None = None,
        now: datetime | None = None,
    ) -> tuple[int, Any]:
        """(count, mask of the matching members) from the current snapshot, as of `now`
        (default: the start of this minute, so windows computed for one request serve
        every request in the same minute)."""
        snapshot = self.snapshot
        if snapshot is None:
            raise LookupError("no snapshot yet")
        if now is None:
            now = timezone.now().replace(second=0, microsecond=0)
        mask = Evaluator(snapshot, now).mask(tree)
        scope = self.scope(snapshot, user)
        if scope is not None:
            mask &= scope
        if store_id is not None:
            mask &= snapshot.cols["home_store"] == store_id
        return int(np.count_nonzero(mask)), mask

    def scope(self, snapshot: Snapshot, user: Any) -> Any:
        """The members `user` may see, as a mask (None: everyone). Decided by the same
        `scope_filter` every list uses, once per user and snapshot."""
        from members.models import Member
        from scrm.org.scoping import scope_filter

        key = (getattr(user, "pk", None), getattr(user, "role", None))
        if key in snapshot._scope_cache:
            return snapshot._scope_cache[key]
        condition = scope_filter(Member.scope, user)
        if condition is None:
            mask = None
        else:
            visible = Member.objects.filter(condition).values_list("pk", flat=True)
            mask = np.zeros(snapshot.size, dtype=bool)
            mask[snapshot.positions(visible)] = True
        with snapshot.lock:
            snapshot._scope_cache[key] = mask
        return mask


ENGINE = Engine()


def fields_in(tree: Group) -> set[str]:
    fields: set[str] = set()
    for node in tree.rules:
        if isinstance(node, Group):
            fields |= fields_in(node)
        else:
            fields.add(node.field)
    return fields
