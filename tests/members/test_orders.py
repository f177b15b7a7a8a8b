"""Orders: recorded once, refunds applied, member statistics and stage kept current."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from members.models import LifecycleStage, Member, Order, OrderLine, OrderStatus
from members.services.errors import MemberError
from members.services.orders import LineInput, order_record, order_refund, store_by_code
from tests.conftest import Org
from tests.members.factories import MemberFactory
from tests.org.factories import StaffFactory


def _record(
    member: Member, external_id: str = "POS-0001", amount: object = "299.00", **kwargs: object
) -> Order:
    return order_record(
        channel=kwargs.pop("channel", "pos"),
        external_id=external_id,  # type: ignore[arg-type]
        member=member,
        paid_at=kwargs.pop("paid_at", timezone.now()),  # type: ignore[arg-type]
        amount=amount,
        **kwargs,
    )  # type: ignore[arg-type]


def _state() -> tuple[object, ...]:
    return (
        list(Order.objects.values_list("pk", "amount", "refunded_amount", "status")),
        OrderLine.objects.count(),
        list(
            Member.objects.order_by("pk").values_list(
                "order_count", "total_spent", "lifecycle_stage"
            )
        ),
    )


def test_order_with_lines_credits_store_and_guide_and_updates_the_member(org: Org) -> None:
    member = org.member_of_guide_a1
    order = _record(
        member,
        amount="¥1,299.00",
        store=store_by_code("SH001"),
        lines=[
            LineInput(
                sku="SK-A003",
                product_name="修护精华液",
                category="精华",
                quantity=2,
                unit_price=Decimal("459.00"),
            ),
            LineInput(sku="SK-A001", product_name="氨基酸洁面乳", quantity=3, unit_price="127"),  # type: ignore[arg-type]
        ],
    )
    assert order.amount == Decimal("1299.00")
    assert order.store == org.a1
    assert order.guide == org.guide_a1  # the guide in charge at purchase time
    assert [(line.sku, line.quantity, line.amount) for line in order.lines.all()] == [
        ("SK-A003", 2, Decimal("918.00")),
        ("SK-A001", 3, Decimal("381.00")),
    ]
    member.refresh_from_db()
    assert (member.order_count, member.total_spent) == (1, Decimal("1299.00"))
    assert member.lifecycle_stage == LifecycleStage.NEW
    assert member.last_order_at == order.paid_at


def test_credited_guide_stays_after_the_member_moves_to_another_guide(org: Org) -> None:
    member = org.member_of_guide_a1
    order = _record(member)
    member.guide = org.guide_a1_other
    member.save(update_fields=["guide"])
    order.refresh_from_db()
    assert order.guide == org.guide_a1


def test_duplicate_order_number_is_refused_and_changes_nothing(org: Org) -> None:
    member = org.member_of_guide_a1
    _record(member, "TM-778899", channel="tmall")
    before = _state()
    with pytest.raises(MemberError) as error:
        _record(member, "TM-778899", channel="tmall", amount="5.00")
    assert error.value.code == "duplicate_order"
    assert _state() == before
    # The same number from another channel is another order.
    _record(member, "TM-778899", channel="jd")
    assert Order.objects.count() == 2


def test_unknown_store_is_refused(db: None) -> None:
    with pytest.raises(MemberError) as error:
        store_by_code("NOPE01")
    assert error.value.code == "unknown_store"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"amount": "-1"}, "amount_negative"),
        ({"amount": "12元"}, "amount_invalid"),
        ({"channel": "taobao-live"}, "unknown_channel"),
        ({"external_id": "  "}, "order_id_invalid"),
        ({"paid_at": timezone.now().replace(tzinfo=None)}, "paid_at_naive"),
        ({"paid_at": timezone.now() + timedelta(days=2)}, "paid_at_future"),
        (
            {"lines": [LineInput(sku="X", product_name="X", quantity=0, unit_price=Decimal(1))]},
            "quantity_invalid",
        ),
    ],
)
def test_bad_orders_are_refused_and_write_nothing(org: Org, kwargs: dict, code: str) -> None:  # type: ignore[type-arg]
    before = _state()
    with pytest.raises(MemberError) as error:
        _record(org.member_of_guide_a1, **kwargs)
    assert error.value.code == code
    assert _state() == before


def test_crediting_someone_who_is_not_a_guide_is_refused(org: Org) -> None:
    before = _state()
    with pytest.raises(MemberError) as error:
        _record(org.member_of_guide_a1, guide=org.store_manager_a1)
    assert error.value.code == "not_a_guide"
    inactive = StaffFactory(role="guide", is_active=False)
    with pytest.raises(MemberError):
        _record(org.member_of_guide_a1, guide=inactive)
    assert _state() == before


def test_partial_then_full_refund(org: Org) -> None:
    member = org.member_of_guide_a1
    keep = _record(member, "POS-A", amount="100.00", paid_at=timezone.now() - timedelta(days=5))
    order = _record(member, "POS-B", amount="300.00")
    member.refresh_from_db()
    assert member.lifecycle_stage == LifecycleStage.REPEAT
    order_refund(order=order, amount="120.00")
    order.refresh_from_db()
    member.refresh_from_db()
    assert (order.refunded_amount, order.status) == (
        Decimal("120.00"),
        OrderStatus.PARTIALLY_REFUNDED,
    )
    assert (member.order_count, member.total_spent) == (2, Decimal("280.00"))
    order_refund(order=order, amount="180.00")
    order.refresh_from_db()
    member.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert (member.order_count, member.total_spent) == (1, Decimal("100.00"))
    assert member.last_order_at == keep.paid_at
    assert member.lifecycle_stage == LifecycleStage.NEW


def test_refund_beyond_the_amount_is_refused_and_changes_nothing(org: Org) -> None:
    order = _record(org.member_of_guide_a1, amount="50.00")
    order_refund(order=order, amount="30.00")
    before = _state()
    for amount, code in (
        ("20.01", "refund_too_large"),
        ("0", "refund_invalid"),
        ("-5", "amount_negative"),
    ):
        with pytest.raises(MemberError) as error:
            order_refund(order=order, amount=amount)
        assert error.value.code == code
    assert _state() == before


def test_orders_on_a_merged_away_member_are_refused(org: Org) -> None:
    ghost = MemberFactory(merged_into=org.member_of_guide_a1)
    with pytest.raises(MemberError) as error:
        _record(ghost)
    assert error.value.code == "member_merged"
    assert not Order.objects.exists()
