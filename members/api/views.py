from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from members.api.auth import IsMember, MemberTokenAuthentication
from members.api.card import member_card_payload
from members.api.idempotency import IDEMPOTENCY_KEY, idempotent
from members.api.serializers import (
    CouponOutput,
    MemberCardOutput,
    MemberUpdateInput,
    PhoneBindInput,
    PointsEntryOutput,
    RedemptionOutput,
    RefreshInput,
    RewardOutput,
    SignInOutput,
    TokensOutput,
    WechatLoginInput,
)
from members.services import auth as auth_services
from members.services.errors import MemberError
from members.wechat import get_wechat_client
from scrm.core.api import ApiError
from scrm.core.openapi import ERROR
from scrm.core.security import token_guard


def _api_error(exc: MemberError) -> ApiError:
    return ApiError(exc.code, exc.message, exc.status)


def _rejected_credentials(exc: Exception) -> bool:
    """A code or token refused as wrong (counts towards a lockout) — not WeChat being
    unreachable (5xx) or an identity conflict for staff to review (409)."""
    return isinstance(exc, MemberError) and exc.status in (400, 401, 403)


class WechatLoginApi(APIView):
    """Sign in with the code from wx.login(); creates the member on first visit."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(
        request=WechatLoginInput,
        responses={200: TokensOutput, 400: ERROR, 409: ERROR, 429: ERROR},
    )
    def post(self, request: Request) -> Response:
        data = WechatLoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            with token_guard(request, "wechat-login", _rejected_credentials):
                tokens = auth_services.wechat_login(
                    code=data.validated_data["code"], client=get_wechat_client()
                )
        except MemberError as exc:
            raise _api_error(exc) from exc
        return Response(TokensOutput(tokens).data)


class RefreshApi(APIView):
    """Swap a refresh token for new tokens (the old refresh token stops working)."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(request=RefreshInput, responses={200: TokensOutput, 401: ERROR, 429: ERROR})
    def post(self, request: Request) -> Response:
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            with token_guard(request, "refresh", _rejected_credentials):
                tokens = auth_services.tokens_refresh(refresh=data.validated_data["refresh"])
        except MemberError as exc:
            raise _api_error(exc) from exc
        return Response(TokensOutput(tokens).data)


class MemberApiView(APIView):
    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [IsMember]


class LogoutApi(MemberApiView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        auth_services.session_revoke(session=request.user.session)  # type: ignore[union-attr]
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(MemberApiView):
    """The signed-in member's card; PATCH edits name, gender, birthday and city."""

    @extend_schema(responses={200: MemberCardOutput, 401: ERROR})
    def get(self, request: Request) -> Response:
        return Response(member_card_payload(request.user.member))  # type: ignore[union-attr]

    @extend_schema(request=MemberUpdateInput, responses={200: MemberCardOutput, 400: ERROR})
    def patch(self, request: Request) -> Response:
        data = MemberUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        member = auth_services.member_update_profile(
            member=request.user.member,  # type: ignore[union-attr]
            data=data.validated_data,
        )
        return Response(member_card_payload(member))


class PhoneBindApi(MemberApiView):
    """Bind the phone from getPhoneNumber: the person becomes a member (会员)."""

    @extend_schema(request=PhoneBindInput, responses={200: MemberCardOutput, 409: ERROR})
    def post(self, request: Request) -> Response:
        data = PhoneBindInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            member = auth_services.member_bind_phone(
                member=request.user.member,  # type: ignore[union-attr]
                phone_code=data.validated_data["code"],
                client=get_wechat_client(),
            )
        except MemberError as exc:
            raise _api_error(exc) from exc
        return Response(member_card_payload(member))


class SignInApi(MemberApiView):
    """Daily sign-in (签到): earns the sign-in rule's points once a day. Requires an
    Idempotency-Key header; a second sign-in the same day earns nothing."""

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: SignInOutput, 400: ERROR, 409: ERROR, 422: ERROR},
    )
    @idempotent("sign-in")
    def post(self, request: Request) -> Response:
        from members.services.earning import points_sign_in

        member = request.user.member  # type: ignore[union-attr]
        try:
            signed = points_sign_in(member_id=member.pk)
        except MemberError as exc:
            raise _api_error(exc) from exc
        return Response(SignInOutput(signed).data)


class PointsHistoryApi(MemberApiView, ListAPIView):
    """The member's points ledger, newest first (`?account=activity|growth`)."""

    serializer_class = PointsEntryOutput

    @extend_schema(
        parameters=[OpenApiParameter("account", str, enum=["activity", "growth"], required=False)]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        from members.models import LedgerEntry
        from members.selectors import points_history

        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema generator
            return LedgerEntry.objects.none()

        account = self.request.query_params.get("account", "")
        if account and account not in ("activity", "growth"):
            raise ApiError("account_invalid", _("Use account=activity or account=growth."), 400)
        return points_history(member=self.request.user.member, account=account)  # type: ignore[union-attr]


class CouponListApi(MemberApiView, ListAPIView):
    """The member's coupons, newest first (`?status=issued|used|expired|revoked`)."""

    serializer_class = CouponOutput

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", str, enum=["issued", "used", "expired", "revoked"], required=False
            )
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        from members.models import Coupon, CouponStatus
        from members.selectors import member_coupons

        if getattr(self, "swagger_fake_view", False):
            return Coupon.objects.none()
        status_ = self.request.query_params.get("status", "")
        if status_ and status_ not in CouponStatus.values:
            raise ApiError("status_invalid", _("Unknown coupon status."), 400)
        return member_coupons(member=self.request.user.member, status=status_)  # type: ignore[union-attr]


class RewardListApi(MemberApiView, ListAPIView):
    """The points mall: rewards on offer now."""

    serializer_class = RewardOutput

    def get_queryset(self) -> Any:
        from members.selectors import mall_rewards

        return mall_rewards()


class RewardRedeemApi(MemberApiView):
    """Redeem a reward for points (one transaction: points, stock, coupon). Requires an
    Idempotency-Key header."""

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: RedemptionOutput, 403: ERROR, 404: ERROR, 409: ERROR, 422: ERROR},
    )
    @idempotent("reward-redeem")
    def post(self, request: Request, reward_id: int) -> Response:
        from members.services.mall import reward_redeem

        member = request.user.member  # type: ignore[union-attr]
        try:
            redemption = reward_redeem(
                member_id=member.pk,
                reward_id=reward_id,
                key=request.headers["Idempotency-Key"].strip(),
            )
        except MemberError as exc:
            raise _api_error(exc) from exc
        return Response(RedemptionOutput(redemption).data, status=status.HTTP_201_CREATED)


class RedemptionCancelApi(MemberApiView):
    """Cancel one of the member's redemptions: points and stock go back, the coupon is
    revoked. Refused once its coupon is used. Requires an Idempotency-Key header."""

    @extend_schema(
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: RedemptionOutput, 404: ERROR, 409: ERROR, 422: ERROR},
    )
    @idempotent("redemption-cancel")
    def post(self, request: Request, redemption_id: int) -> Response:
        from members.services.mall import redemption_cancel

        member = request.user.member  # type: ignore[union-attr]
        try:
            redemption = redemption_cancel(
                redemption_id=redemption_id,
                member_id=member.pk,
                reason=_("Cancelled by the member"),
            )
        except MemberError as exc:
            raise _api_error(exc) from exc
        return Response(RedemptionOutput(redemption).data)
