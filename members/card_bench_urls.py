"""URLconf for `bench member-card` only: the real URLs plus the baseline endpoint, a plain
DRF ModelSerializer with the member's coupons nested (what a first version would do)."""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from members.api.views import MemberApiView
from members.models import Coupon, Member
from scrm.urls import urlpatterns as real_urlpatterns


class PlainCouponSerializer(serializers.ModelSerializer[Coupon]):
    class Meta:
        model = Coupon
        fields = ["id", "code", "status", "issued_at", "valid_until", "template"]


class PlainMemberCardSerializer(serializers.ModelSerializer[Member]):
    coupons = PlainCouponSerializer(many=True)
    phone = serializers.CharField(source="masked_phone")
    points_accounts = serializers.SerializerMethodField()

    class Meta:
        model = Member
        fields = [
            "id",
            "name",
            "gender",
            "birthday",
            "city",
            "phone",
            "member_since",
            "lifecycle_stage",
            "home_store",
            "order_count",
            "total_spent",
            "coupons",
            "points_accounts",
        ]

    def get_points_accounts(self, member: Member) -> list[dict[str, Any]]:
        from members.models import PointsAccount

        rows = PointsAccount.objects.filter(member=member).values("kind", "balance")
        return [dict(row) for row in rows]


class PlainMemberCardApi(MemberApiView):
    def get(self, request: Request) -> Response:
        return Response(PlainMemberCardSerializer(request.user.member).data)  # type: ignore[union-attr]


urlpatterns = [
    *real_urlpatterns,
    path("bench/plain-card", PlainMemberCardApi.as_view()),
]
