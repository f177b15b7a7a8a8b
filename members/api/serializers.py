from __future__ import annotations

from datetime import date
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from members.models import Coupon, Gender, LedgerEntry, Member, Redemption, Reward


class StoreBrief(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class PointsCardOutput(serializers.Serializer):
    activity = serializers.IntegerField(help_text="Activity points (活跃积分) balance.")
    spendable = serializers.IntegerField(help_text="Activity points that can be spent now.")
    growth = serializers.IntegerField(help_text="Growth value (成长值).")
    expiring_soon = serializers.IntegerField(help_text="Activity points expiring within 30 days.")
    expiring_at = serializers.DateTimeField(allow_null=True)


class TierBrief(serializers.Serializer):
    name = serializers.CharField()
    rank = serializers.IntegerField()
    discount_rate = serializers.DecimalField(max_digits=4, decimal_places=2)
    free_delivery = serializers.BooleanField()
    birthday_gift = serializers.CharField(help_text="The birthday coupon's name, if any.")
    priority_service = serializers.BooleanField()


class TierCardOutput(serializers.Serializer):
    current = TierBrief(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    next = TierBrief(allow_null=True)
    growth_in_window = serializers.IntegerField(help_text="Growth value counted for the next tier.")
    to_next = serializers.IntegerField(help_text="Growth value still needed for the next tier.")


class MemberCardOutput(serializers.ModelSerializer[Member]):
    """The member card the mini-program shows. The phone is the member's own and could be
    shown in full; the card shows it masked all the same (a screenshot of the card is
    shared more easily than the phone itself), which also spares a decryption per card."""

    phone = serializers.CharField(source="masked_phone")
    points = serializers.SerializerMethodField()
    tier = serializers.SerializerMethodField()
    coupon_count = serializers.SerializerMethodField(help_text="Usable coupons.")
    is_member = serializers.SerializerMethodField()
    lifecycle_stage_label = serializers.CharField(source="get_lifecycle_stage_display")
    home_store = StoreBrief(allow_null=True)

    class Meta:
        model = Member
        fields = [
            "id",
            "name",
            "gender",
            "birthday",
            "city",
            "phone",
            "is_member",
            "member_since",
            "lifecycle_stage",
            "lifecycle_stage_label",
            "home_store",
            "order_count",
            "total_spent",
            "points",
            "tier",
            "coupon_count",
        ]

    def get_is_member(self, member: Member) -> bool:
        return member.member_since is not None

    def to_representation(self, instance: Member) -> dict[str, Any]:
        from members.selectors import member_card

        self._card = member_card(member_id=instance.pk)  # one query for all three below
        return super().to_representation(instance)

    @extend_schema_field(PointsCardOutput)
    def get_points(self, member: Member) -> dict[str, Any]:
        return PointsCardOutput(self._card["points"]).data

    def get_coupon_count(self, member: Member) -> int:
        return int(self._card["coupon_count"])

    @extend_schema_field(TierCardOutput)
    def get_tier(self, member: Member) -> dict[str, Any]:
        return TierCardOutput(self._card["tier"]).data


class PointsEntryOutput(serializers.ModelSerializer[LedgerEntry]):
    account = serializers.CharField(source="account.kind")
    kind_label = serializers.CharField(source="get_kind_display")
    expires_at = serializers.SerializerMethodField()

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "account",
            "kind",
            "kind_label",
            "amount",
            "balance_after",
            "source",
            "reason",
            "created_at",
            "expires_at",
        ]

    def get_expires_at(self, entry: LedgerEntry) -> Any:
        lot = getattr(entry, "lot", None)
        return lot.expires_at if lot is not None else None


class SignInOutput(serializers.Serializer):
    points = serializers.IntegerField(help_text="Points credited by this sign-in (0 if capped).")
    balance = serializers.IntegerField(help_text="Activity points balance after it.")
    already_signed_in = serializers.BooleanField()


class TokensOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    access_expires_in = serializers.IntegerField()
    member = MemberCardOutput()


class WechatLoginInput(serializers.Serializer):
    code = serializers.CharField(max_length=128, help_text="The code from wx.login()")


class RefreshInput(serializers.Serializer):
    refresh = serializers.CharField(max_length=200)


class PhoneBindInput(serializers.Serializer):
    code = serializers.CharField(max_length=128, help_text="The code from getPhoneNumber")


class MemberUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=50, allow_blank=False, trim_whitespace=True)
    gender = serializers.ChoiceField(choices=Gender.choices)
    birthday = serializers.DateField(allow_null=True)
    city = serializers.CharField(max_length=50, allow_blank=True, trim_whitespace=True)

    def validate_birthday(self, value: date | None) -> date | None:
        if value is not None and (value > timezone.localdate() or value.year < 1900):
            raise serializers.ValidationError(_("Birthday must be a real date in the past."))
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError(
                {name: [_("This field cannot be changed here.")] for name in sorted(unknown)}
            )
        if not attrs:
            raise serializers.ValidationError(_("Send at least one field to change."))
        return attrs


class CouponOutput(serializers.ModelSerializer[Coupon]):
    name = serializers.CharField(source="template.name")
    kind = serializers.CharField(source="template.kind")
    amount_off = serializers.DecimalField(
        source="template.amount_off", max_digits=10, decimal_places=2, allow_null=True
    )
    percent_off = serializers.IntegerField(source="template.percent_off", allow_null=True)
    gift = serializers.CharField(source="template.gift")
    min_spend = serializers.DecimalField(
        source="template.min_spend", max_digits=10, decimal_places=2
    )
    status_label = serializers.CharField(source="get_status_display")

    class Meta:
        model = Coupon
        fields = [
            "id",
            "code",
            "name",
            "kind",
            "amount_off",
            "percent_off",
            "gift",
            "min_spend",
            "status",
            "status_label",
            "issued_at",
            "valid_until",
            "used_at",
        ]


class RewardOutput(serializers.ModelSerializer[Reward]):
    min_tier = serializers.CharField(
        source="min_tier.name",
        default=None,
        allow_null=True,
        help_text="The lowest tier that may redeem it; null when every tier may.",
    )
    in_stock = serializers.SerializerMethodField()

    class Meta:
        model = Reward
        fields = [
            "id",
            "name",
            "kind",
            "gift",
            "points_price",
            "in_stock",
            "per_member_limit",
            "min_tier",
            "available_until",
        ]

    def get_in_stock(self, reward: Reward) -> bool:
        return reward.stock > 0


class RedemptionOutput(serializers.ModelSerializer[Redemption]):
    reward = RewardOutput()
    coupon = CouponOutput(allow_null=True)
    balance = serializers.SerializerMethodField()

    class Meta:
        model = Redemption
        fields = [
            "id",
            "reward",
            "points",
            "status",
            "coupon",
            "created_at",
            "cancelled_at",
            "balance",
        ]

    def get_balance(self, redemption: Redemption) -> int:
        from members.services.points import points_balances

        return points_balances(member_id=redemption.member_id).activity
