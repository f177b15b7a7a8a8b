"""The member card payload, built directly: the mini-program opens it on every launch.

`MemberCardOutput` documents the same shape (and the tests hold the two equal); building
it through a ModelSerializer cost more than a millisecond per request in field set-up
alone, the largest part of the endpoint's time.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from members.models import Member
from members.selectors import member_card

_datetime = serializers.DateTimeField()
_date = serializers.DateField()
_money = serializers.DecimalField(max_digits=14, decimal_places=2)


def _when(value: Any) -> str | None:
    return _datetime.to_representation(value) if value is not None else None


def member_card_payload(member: Member) -> dict[str, Any]:
    card = member_card(member_id=member.pk)
    store = member.home_store if member.home_store_id else None
    points, tier = card["points"], card["tier"]
    return {
        "id": member.pk,
        "name": member.name,
        "gender": member.gender,
        "birthday": _date.to_representation(member.birthday) if member.birthday else None,
        "city": member.city,
        "phone": member.masked_phone,
        "is_member": member.member_since is not None,
        "member_since": _when(member.member_since),
        "lifecycle_stage": member.lifecycle_stage,
        "lifecycle_stage_label": str(member.get_lifecycle_stage_display()),
        "home_store": {"code": store.code, "name": store.name} if store else None,
        "order_count": member.order_count,
        "total_spent": _money.to_representation(member.total_spent),
        "points": {**points, "expiring_at": _when(points["expiring_at"])},
        "tier": {**tier, "valid_until": _when(tier["valid_until"])},
        "coupon_count": card["coupon_count"],
    }
