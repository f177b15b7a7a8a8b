from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from members.api.auth import IsMember, MemberTokenAuthentication
from members.api.serializers import (
    MemberCardOutput,
    MemberUpdateInput,
    PhoneBindInput,
    RefreshInput,
    TokensOutput,
    WechatLoginInput,
)
from members.services import auth as auth_services
from members.services.errors import MemberError
from members.wechat import get_wechat_client
from scrm.core.api import ApiError

ERROR = OpenApiResponse(description='JSON error: {"code": "...", "message": "..."}')


def _api_error(exc: MemberError) -> ApiError:
    return ApiError(exc.code, exc.message, exc.status)


class WechatLoginApi(APIView):
    """Sign in with the code from wx.login(); creates the member on first visit."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    @extend_schema(request=WechatLoginInput, responses={200: TokensOutput, 400: ERROR, 409: ERROR})
    def post(self, request: Request) -> Response:
        data = WechatLoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
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

    @extend_schema(request=RefreshInput, responses={200: TokensOutput, 401: ERROR})
    def post(self, request: Request) -> Response:
        data = RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
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
        return Response(MemberCardOutput(request.user.member).data)  # type: ignore[union-attr]

    @extend_schema(request=MemberUpdateInput, responses={200: MemberCardOutput, 400: ERROR})
    def patch(self, request: Request) -> Response:
        data = MemberUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        member = auth_services.member_update_profile(
            member=request.user.member,  # type: ignore[union-attr]
            data=data.validated_data,
        )
        return Response(MemberCardOutput(member).data)


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
        return Response(MemberCardOutput(member).data)
