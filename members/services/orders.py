"""Orders: recorded once per (channel, order number), refunds applied, member stats kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Min, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Channel, Member, Order, OrderLine, OrderStatus
from members.services.errors import Conflict, MemberError, NotFound
from scrm.org.models import Staff, Store
from scrm.org.scoping import Role

CENT = Decimal("0.01")


@dataclass(frozen=True)
class LineInput:
    sku: str
    product_name: str
    quantity: int
    unit_price: Decimal
    category: str = ""
    amount: Decimal | None = None


def money(value: object, *, field: str = "amount") -> Decimal:
    """Parse an amount (Decimal, int, '1,299.00', '¥88'); refuse floats' rounding surprises."""
    if isinstance(value, float):
        value = repr(value)
    text = str(value).strip().replace(",", "").replace("¥", "").replace("￥", "")
    try:
        amount = Decimal(text).quantize(CENT)
    except (InvalidOperation, ValueError) as exc:
        raise MemberError(
            "amount_invalid",
            _("%(field)s “%(value)s” is not an amount.")
            % {"field": field, "value": str(value)[:30]},
        ) from exc
    if amount < 0:
        raise MemberError("amount_negative", _("%(field)s cannot be negative.") % {"field": field})
    return amount


def status_after_refund(amount: Decimal, refunded: Decimal) -> str:
    """An order's status from how much of it has been refunded (recorded refunds and
    imported exports alike)."""
    if not refunded:
        return OrderStatus.PAID
    return OrderStatus.REFUNDED if refunded == amount else OrderStatus.PARTIALLY_REFUNDED


def store_by_code(code: str) -> Store:
    store = Store.objects.filter(code=code.strip()).first() if code and code.strip() else None
    if store is None:
        raise NotFound("unknown_store", _("Unknown store code “%(code)s”.") % {"code": code})
    return store


@transaction.atomic
def order_record(
    *,
    channel: str,
    external_id: str,
    member: Member,
    paid_at: datetime,
    amount: Any,
    store: Store | None = None,
    guide: Staff | None = None,
    lines: Sequence[LineInput] = (),
) -> Order:
    """Record a paid order and update the member's purchase statistics and stage.

    The guide credited is the one named, else the member's guide at this moment; it is
    stored on the order, so later transfers never move past sales.
    """
    from members.services.lifecycle import member_refresh_stage
    from members.services.rfm import rfm_mark_new_orders

    if channel not in Channel.values:
        raise MemberError(
            "unknown_channel", _("Unknown channel “%(channel)s”.") % {"channel": channel}
        )
    external_id = (external_id or "").strip()
    if not external_id or len(external_id) > 64:
        raise MemberError("order_id_invalid", _("An order number of 1–64 characters is needed."))
    if timezone.is_naive(paid_at):
        raise MemberError("paid_at_naive", _("The payment time needs a time zone."))
    if paid_at > timezone.now() + timedelta(minutes=10):
        raise MemberError("paid_at_future", _("The payment time is in the future."))
    total = money(amount)
    if guide is not None and (guide.role != Role.GUIDE or not guide.is_active):
        raise MemberError("not_a_guide", _("%(name)s is not an active guide.") % {"name": guide})
    if member.merged_into_id is not None:
        raise MemberError("member_merged", _("This member was merged into another one."))
    line_rows = [_line(line) for line in lines]
    if Order.objects.filter(channel=channel, external_id=external_id).exists():
        raise Conflict(
            "duplicate_order",
            _("Order %(id)s from %(channel)s is already recorded.")
            % {"id": external_id, "channel": Channel(channel).label},
        )
    # The guide in charge now, read from the row (the caller's object may predate a transfer).
    current_guide_id = (
        Member.all_objects.filter(pk=member.pk).values_list("guide_id", flat=True).first()
    )
    member.guide_id = current_guide_id
    try:
        with transaction.atomic():
            order = Order.objects.create(
                channel=channel,
                external_id=external_id,
                member=member,
                store=store,
                guide_id=guide.pk if guide is not None else current_guide_id,
                paid_at=paid_at,
                amount=total,
            )
    except IntegrityError as exc:  # the same order arriving twice at once
        raise Conflict(
            "duplicate_order", _("Order %(id)s is already recorded.") % {"id": external_id}
        ) from exc
    for row in line_rows:
        row.order = order
    OrderLine.objects.bulk_create(line_rows)
    if guide is not None and member.guide_id is None:
        _assign_buyer(member, guide, paid_at)
    member_refresh_order_stats(member=member)
    member.refresh_from_db()
    member_refresh_stage(member=member, reason="order")
    rfm_mark_new_orders([order.pk])
    _auto_tag_after_commit(member.pk)
    from members.services.earning import points_award_for_order

    points_award_for_order(order=order)  # growth value, and a tier upgrade if it crosses one
    return order


def _assign_buyer(member: Member, guide: Staff, paid_at: datetime) -> None:
    """A purchase carrying a guide's code makes an unassigned buyer that guide's customer,
    unless the buyer belongs to a store the guide does not work at (the sale is still
    credited to the guide on the order)."""
    from members.models import AssignmentReason
    from members.services.guides import guide_assign

    try:
        guide_assign(member=member, guide=guide, reason=AssignmentReason.PURCHASE, now=paid_at)
    except MemberError:
        return


def _line(line: LineInput) -> OrderLine:
    if line.quantity is None or int(line.quantity) <= 0:
        raise MemberError(
            "quantity_invalid", _("Quantity must be at least 1 (%(sku)s).") % {"sku": line.sku}
        )
    if not line.sku or not line.product_name:
        raise MemberError("line_invalid", _("Each order line needs a SKU and a product name."))
    price = money(line.unit_price, field="unit price")
    amount = (
        money(line.amount, field="line amount")
        if line.amount is not None
        else (price * int(line.quantity)).quantize(CENT)
    )
    return OrderLine(
        sku=line.sku[:64],
        product_name=line.product_name[:200],
        category=(line.category or "")[:100],
        quantity=int(line.quantity),
        unit_price=price,
        amount=amount,
    )


@transaction.atomic
def order_refund(*, order: Order, amount: Any) -> Order:
    """Apply a refund; a full refund takes the order out of the purchase count."""
    from members.services.lifecycle import member_refresh_stage
    from members.services.rfm import rfm_mark_dirty

    refund = money(amount, field="refund")
    if refund <= 0:
        raise MemberError("refund_invalid", _("A refund must be more than zero."))
    updated = Order.objects.filter(pk=order.pk, refunded_amount__lte=F("amount") - refund).update(
        refunded_amount=F("refunded_amount") + refund
    )
    if not updated:
        order.refresh_from_db()
        raise Conflict(
            "refund_too_large",
            _("Refund of %(refund)s exceeds what is left to refund (%(left)s).")
            % {"refund": refund, "left": order.amount - order.refunded_amount},
        )
    order.refresh_from_db()
    order.status = status_after_refund(order.amount, order.refunded_amount)
    order.save(update_fields=["status"])
    member = Member.all_objects.get(pk=order.member_id)
    member_refresh_order_stats(member=member)
    member.refresh_from_db()
    member_refresh_stage(member=member, reason="refund")
    rfm_mark_dirty([member.pk])
    from members.services.earning import points_reverse_for_refund

    points_reverse_for_refund(order=order)
    return order


def member_refresh_order_stats(*, member: Member) -> None:
    """Recount from the orders themselves, so the figures can never drift."""
    stats = (
        Order.objects.filter(member=member)
        .exclude(status=OrderStatus.REFUNDED)
        .aggregate(
            count=Count("pk"),
            spent=Sum(F("amount") - F("refunded_amount")),
            first=Min("paid_at"),
            last=Max("paid_at"),
        )
    )
    Member.all_objects.filter(pk=member.pk).update(
        order_count=stats["count"] or 0,
        total_spent=stats["spent"] or Decimal("0"),
        first_order_at=stats["first"],
        last_order_at=stats["last"],
        updated_at=timezone.now(),
    )


def _auto_tag_after_commit(member_id: int) -> None:
    """A new order can make a member match an auto-tag rule: apply them once it commits."""
    from members.models import AutoTagRule

    if AutoTagRule.objects.filter(active=True).exists():
        from members.tasks import auto_tag_members

        transaction.on_commit(lambda: auto_tag_members.delay([member_id]))
