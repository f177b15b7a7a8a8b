"""Order rows → orders, a chunk at a time, set-based.

A row is an order line; consecutive rows with the same order number are one order
(channel exports list them together). Buyers are found by any identity; unknown buyers
join the pool as prospects. Order numbers already recorded are skipped, except that a
larger refund in the file is applied.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Channel
from members.services.bulk import allocate_ids, text_array
from members.services.lifecycle import order_stats_and_stage_refresh
from members.services.orders import status_after_refund
from members.services.rfm import rfm_mark_dirty, rfm_mark_new_orders
from touchpoints.imports import normalize as norm
from touchpoints.imports.copytext import moment, optional, text, write_lines
from touchpoints.imports.mappings import (
    BUYER_ID_KIND,
    IDENTITY_FIELDS,
    REQUIRED_ORDER_FIELDS,
    SOURCE_CHANNEL,
)
from touchpoints.imports.members_import import (
    Counts,
    Key,
    Lookups,
    MemberRow,
    PhoneColumns,
    channel_keys,
    identity_columns,
    import_member_chunk,
    kept_phone,
)


@dataclass
class ParsedOrder:
    first_row: int
    last_row: int
    channel: str
    order_id: str
    paid_at: datetime
    amount: Decimal
    refund: Decimal
    store_id: int | None
    guide_id: int | None
    buyer_keys: list[Key]
    phone: str
    phone_columns: PhoneColumns | None
    # The order's and its lines' COPY text, rendered by the parser's thread: the writer's
    # thread is the import's critical path (see `_order_lines`).
    copy_text: str = ""
    lines: list[str] = field(default_factory=list)
    errors: list[tuple[int, str, str, str]] = field(default_factory=list)
    rejected: int = 0


def required_order_columns(columns: dict[str, int], source: str) -> list[str]:
    missing = [name for name in REQUIRED_ORDER_FIELDS if name not in columns]
    if not IDENTITY_FIELDS & set(columns):
        missing.append("phone")
    if source == "generic" and "channel" not in columns:
        missing.insert(0, "channel")
    return missing


# Every cell an order row may use, pulled once per row in this order (the hot path).
ORDER_FIELDS = (
    "channel",
    "order_id",
    "paid_at",
    "amount",
    "refund_amount",
    "store_code",
    "guide",
    "phone",
    "buyer_id",
    "sku",
    "product_name",
    "category",
    "quantity",
    "unit_price",
)
CHANNELS = frozenset(Channel.values)  # Channel.values builds a new list on every access


class OrderRowParser:
    def __init__(
        self, *, source: str, columns: dict[str, int], headers: Sequence[str], lookups: Lookups
    ) -> None:
        self.source = source
        self.columns = columns
        self.headers = headers
        self.lookups = lookups
        self.buyer_kind = BUYER_ID_KIND.get(source)
        self.id_columns = identity_columns(columns)
        self.buffer: ParsedOrder | None = None
        self.safe_row = 0
        self.now = timezone.now()
        self.field_indexes = [columns.get(name, -1) for name in ORDER_FIELDS]

    def header(self, name: str) -> str:
        return self.headers[self.columns[name]] if name in self.columns else ""

    def feed(self, number: int, cells: list[str], counts: Counts, out: list[ParsedOrder]) -> None:
        errors: list[tuple[str, str, str]] = []
        size = len(cells)
        values = dict(
            zip(
                ORDER_FIELDS,
                [cells[i].strip() if 0 <= i < size else "" for i in self.field_indexes],
                strict=True,
            )
        )

        def fail(name: str, reason: str) -> None:
            errors.append((self.header(name), values.get(name, ""), reason))

        channel = SOURCE_CHANNEL.get(self.source, "")
        if self.source == "generic":
            channel = values["channel"]
            if channel not in CHANNELS:
                fail("channel", _("Unknown channel (use tmall, jd, meituan, pos, …)."))
        order_id = values["order_id"]
        if not order_id or len(order_id) > 64:
            fail("order_id", _("An order number of 1–64 characters is needed."))
        key = (channel, order_id) if order_id and not errors else None
        if self.buffer is not None and (
            key is None or key != (self.buffer.channel, self.buffer.order_id)
        ):
            self._emit(counts, out)
        order: ParsedOrder | None
        if self.buffer is not None:
            order = self.buffer
        else:
            order = self._order_fields(cells, values, channel, order_id, number, fail)
        line = self._line(values, fail)
        if errors:
            target = self.buffer if self.buffer is not None else None
            rows_errors = [(number, c[:100], v[:200], r[:300]) for c, v, r in errors]
            if target is not None:
                target.errors.extend(rows_errors)
                target.rejected += 1
                target.last_row = number
            else:
                counts.rejected += 1
                counts.errors.extend(rows_errors)
                self.safe_row = number
            return
        assert order is not None
        if self.buffer is None:
            self.buffer = order
        if line is not None:
            self.buffer.lines.append(line)
        self.buffer.last_row = number

    def _order_fields(
        self,
        cells: list[str],
        values: dict[str, str],
        channel: str,
        order_id: str,
        number: int,
        fail: Any,
    ) -> ParsedOrder | None:
        paid_at = amount = None
        refund = Decimal("0")
        value = values["paid_at"]
        try:
            paid_at = norm.parse_datetime(value) if value else None
            if paid_at is None:
                fail("paid_at", _("The payment time is missing."))
            elif paid_at > self.now + timedelta(minutes=10):
                fail("paid_at", _("The payment time is in the future."))
        except norm.CellError as exc:
            fail("paid_at", str(exc))
        try:
            amount = norm.amount(values["amount"] or "x")
        except norm.CellError as exc:
            fail("amount", str(exc))
        refund_text = values["refund_amount"]
        if refund_text:
            try:
                refund = norm.amount(refund_text)
                if amount is not None and refund > amount:
                    fail("refund_amount", _("The refund is larger than the order amount."))
            except norm.CellError as exc:
                fail("refund_amount", str(exc))
        store_id = guide_id = None
        store = values["store_code"]
        if store:
            store_id = self.lookups.stores.get(store)
            if store_id is None:
                fail("store_code", _("Unknown store code."))
        guide = values["guide"]
        if guide:
            guide_id = self.lookups.guides.get(guide)
            if guide_id is None:
                fail("guide", _("Unknown guide (use the guide's username)."))
        keys: list[Key] = []
        phone = values["phone"]
        kept = None
        if phone:
            try:
                phone = norm.phone(phone)
                key, kept = kept_phone(phone)
                keys.append(key)
            except norm.CellError as exc:
                fail("phone", str(exc))
                phone = ""
        keys.extend(
            channel_keys(
                cells,
                buyer=values["buyer_id"],
                buyer_kind=self.buyer_kind,
                app_id=self.lookups.app_id,
                id_columns=self.id_columns,
            )
        )
        if not keys and phone == "" and not values["phone"]:
            fail("", _("The row names no buyer: it has no phone or buyer id."))
        if paid_at is None or amount is None or not order_id or not keys:
            return None
        return ParsedOrder(
            number,
            number,
            channel,
            order_id,
            paid_at,
            amount,
            refund,
            store_id,
            guide_id,
            keys,
            phone,
            kept,
            # In ORDER_COPY_COLUMNS' order, after id and member_id.
            f"{channel}\t{text(order_id)}\t{optional(store_id)}\t{optional(guide_id)}\t"
            f"{moment(paid_at)}\t{amount}\t{refund}\t{status_after_refund(amount, refund)}",
        )

    def _line(self, values: dict[str, str], fail: Any) -> str | None:
        """The line's COPY text in ORDERLINE_COPY_COLUMNS' order, after order_id."""
        sku, product = values["sku"], values["product_name"]
        if not sku and not product:
            return None
        try:
            quantity = norm.quantity(values["quantity"] or "1")
        except norm.CellError as exc:
            fail("quantity", str(exc))
            return None
        price_text = values["unit_price"]
        try:
            price = norm.amount(price_text) if price_text else Decimal("0.00")
        except norm.CellError as exc:
            fail("unit_price", str(exc))
            return None
        return (
            f"{text((sku or product)[:64])}\t{text((product or sku)[:200])}\t"
            f"{text(values['category'][:100])}\t{quantity}\t{price}\t"
            f"{(price * quantity).quantize(Decimal('0.01'))}"
        )

    def _emit(self, counts: Counts, out: list[ParsedOrder]) -> None:
        order = self.buffer
        assert order is not None
        out.append(order)
        counts.rejected += order.rejected
        counts.errors.extend(order.errors)
        self.safe_row = order.last_row
        self.buffer = None

    def flush(self, counts: Counts, out: list[ParsedOrder]) -> None:
        if self.buffer is not None:
            self._emit(counts, out)


def import_order_chunk(
    orders: list[ParsedOrder],
    *,
    source: str,
    counts: Counts,
    now: datetime | None = None,
    record_creations: bool = True,
) -> None:
    """Apply one chunk of parsed orders inside the caller's transaction; without
    `record_creations` the buyers it adds to the pool are not copied into the audit
    trail (see `import_member_chunk`)."""
    now = now or timezone.now()
    if not orders:
        return
    existing = _existing(orders)
    refunds: list[tuple[int, Decimal, str]] = []
    fresh: list[ParsedOrder] = []
    seen: set[tuple[str, str]] = set()
    for order in orders:
        key = (order.channel, order.order_id)
        if key in existing or key in seen:
            order_pk, amount, refunded = existing.get(key, (None, order.amount, Decimal(0)))
            if order_pk is not None and order.refund > refunded and order.refund <= amount:
                refunds.append((order_pk, order.refund, status_after_refund(amount, order.refund)))
                counts.updated += 1
            else:
                counts.unchanged += 1
            continue
        seen.add(key)
        fresh.append(order)

    buyers = [
        MemberRow(
            order.first_row,
            order.buyer_keys,
            {"phone": order.phone, "phone_columns": order.phone_columns} if order.phone else {},
            None,
        )
        for order in fresh
    ]
    buyer_counts = Counts()
    resolved = import_member_chunk(
        buyers,
        source=source,
        counts=buyer_counts,
        now=now,
        joining=False,
        record_creations=record_creations,
    )
    placed = [order for order in fresh if order.first_row in resolved]
    for order in fresh:
        if order.first_row not in resolved:
            counts.to_review += 1
            counts.add_error(
                order.first_row,
                "",
                order.order_id,
                _(
                    "The buyer's identities name different members; the order waits until the "
                    "duplicate is reviewed."
                ),
            )
    touched = set(resolved.values())
    new_order_ids: list[int] = []
    refunded_members: set[int] = set()
    with connection.cursor() as cursor:
        if placed:
            ids = allocate_ids(cursor, "members_order", len(placed))
            with cursor.copy(
                f"COPY members_order ({', '.join(ORDER_COPY_COLUMNS)}) FROM STDIN"
            ) as copy:
                write_lines(copy, _order_lines(ids, placed, resolved, moment(now)))
            with cursor.copy(
                f"COPY members_orderline ({', '.join(ORDERLINE_COPY_COLUMNS)}) FROM STDIN"
            ) as copy:
                write_lines(
                    copy,
                    (
                        f"{order_pk}\t{line}\n"
                        for order_pk, order in zip(ids, placed, strict=True)
                        for line in order.lines
                    ),
                )
            counts.created += len(placed)
            new_order_ids = list(ids)
            credited = [o for o in placed if o.guide_id is not None]
            if credited:
                _assign_buyers(cursor, credited, resolved)
        if refunds:
            cursor.execute(
                """
                UPDATE members_order o SET refunded_amount = r.refund, status = r.status
                FROM unnest(%s::bigint[], %s::numeric[], %s::text[]) AS r(id, refund, status)
                WHERE o.id = r.id RETURNING o.member_id
                """,
                [[r[0] for r in refunds], [r[1] for r in refunds], [r[2] for r in refunds]],
            )
            refunded_members = {row[0] for row in cursor.fetchall()}
            touched.update(refunded_members)
    order_stats_and_stage_refresh(ids=sorted(touched), reason=f"orders from {source}", now=now)
    rfm_mark_new_orders(new_order_ids)  # their buyers' RFM facts grow by a delta
    rfm_mark_dirty(refunded_members)  # refunds: recount those buyers
    if refunds:
        # A refund in a re-imported export takes back the growth value the order earned
        # (rare next to new orders, so one order at a time through the points service).
        from members.models import Order
        from members.services.earning import points_reverse_for_refund

        for refunded_order in Order.objects.filter(pk__in=[r[0] for r in refunds]):
            points_reverse_for_refund(order=refunded_order)


ORDER_COPY_COLUMNS = (
    "id",
    "member_id",
    "channel",
    "external_id",
    "store_id",
    "guide_id",
    "paid_at",
    "amount",
    "refunded_amount",
    "status",
    "created_at",
)
ORDERLINE_COPY_COLUMNS = (
    "order_id",
    "sku",
    "product_name",
    "category",
    "quantity",
    "unit_price",
    "amount",
)


def _order_lines(
    ids: list[int], placed: list[ParsedOrder], resolved: dict[int, int], at: str
) -> Iterator[str]:
    """COPY lines for new orders in ORDER_COPY_COLUMNS' order: the writer adds only the
    ids and the moment to what the parser rendered."""
    for order_pk, order in zip(ids, placed, strict=True):
        yield f"{order_pk}\t{resolved[order.first_row]}\t{order.copy_text}\t{at}\n"


ASSIGN_BUYERS_SQL = """
WITH cand AS (
    SELECT DISTINCT ON (o.member_id) o.member_id, o.guide_id, o.paid_at
    FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) AS o(member_id, guide_id, paid_at)
    ORDER BY o.member_id, o.paid_at
), assigned AS (
    UPDATE members_member m
    SET guide_id = c.guide_id,
        home_store_id = COALESCE(m.home_store_id, (
            SELECT min(ss.store_id) FROM org_staff_stores ss WHERE ss.staff_id = c.guide_id))
    FROM cand c JOIN org_staff s ON s.id = c.guide_id AND s.is_active AND s.role = 'guide'
    WHERE m.id = c.member_id AND m.guide_id IS NULL AND m.merged_into_id IS NULL
      AND (m.home_store_id IS NULL OR EXISTS (
          SELECT 1 FROM org_staff_stores ss
          WHERE ss.staff_id = c.guide_id AND ss.store_id = m.home_store_id))
    RETURNING m.id, m.guide_id, m.home_store_id, c.paid_at
)
INSERT INTO members_guideassignment (member_id, to_guide_id, store_id, reason, note, created_at)
SELECT id, guide_id, home_store_id, 'purchase', '', paid_at FROM assigned
"""


def _assign_buyers(cursor: Any, orders: list[ParsedOrder], resolved: dict[int, int]) -> None:
    """A store purchase carrying a guide's code makes an unassigned buyer that guide's
    customer (the same rule as `order_record`, set-based): the earliest such purchase in
    the chunk decides, and a guide of another store than the buyer's is not assigned."""
    cursor.execute(
        ASSIGN_BUYERS_SQL,
        [
            [resolved[o.first_row] for o in orders],
            [o.guide_id for o in orders],
            [o.paid_at for o in orders],
        ],
    )


def _existing(orders: list[ParsedOrder]) -> dict[tuple[str, str], tuple[int, Decimal, Decimal]]:
    with connection.cursor() as cursor:
        # Index lookups per order number; a hash join would scan every order every chunk.
        cursor.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
        cursor.execute(
            """
            SELECT o.channel, o.external_id, o.id, o.amount, o.refunded_amount
            FROM members_order o
            JOIN (SELECT * FROM unnest(%s::text[], %s::text[]) AS u(channel, external_id)
                  ORDER BY channel, external_id) AS k
              ON o.channel = k.channel AND o.external_id = k.external_id
            """,
            [text_array(o.channel for o in orders), text_array(o.order_id for o in orders)],
        )
        found = {(c, e): (pk, amount, refunded) for c, e, pk, amount, refunded in cursor.fetchall()}
        cursor.execute("SET LOCAL enable_hashjoin = on; SET LOCAL enable_mergejoin = on")
        return found
