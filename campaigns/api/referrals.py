"""The mini-program's invite page (裂变): my code and link, and accepting a friend's invite."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.services.referrals import (
    MAX_DEVICE_ID_LENGTH,
    ReferralSummary,
    referral_claim,
    referral_summary,
)
from members.api.auth import IsMember, MemberTokenAuthentication
from members.services.errors import MemberError
from scrm.core.api import ApiError
from scrm.core.openapi import ERROR

# The mini-program page that opens an invite; shared cards and QR codes point here.
INVITE_PAGE = "pages/invite/index"


def invite_path(code: str) -> str:
    return f"{INVITE_PAGE}?code={code}"


def invite_link(code: str) -> str:
    """A web link when the brand set SCRM_INVITE_LINK_BASE (e.g. an H5 landing page that
    opens the mini-program), else the mini-program path itself."""
    base = str(getattr(settings, "SCRM_INVITE_LINK_BASE", "") or "")
    if not base:
        return invite_path(code)
    return f"{base}{'&' if '?' in base else '?'}code={code}"


class ReferralOutput(serializers.Serializer):
    code = serializers.CharField(help_text="The member's invite code (8 characters).")
    invite_path = serializers.CharField(help_text="Mini-program page path with the code.")
    invite_link = serializers.CharField(help_text="The link to share.")
    active = serializers.BooleanField(help_text="Whether the referral programme is running.")
    invitees_credited = serializers.IntegerField(help_text="Friends who registered.")
    invitees_pending = serializers.IntegerField(help_text="Friends yet to register.")
    second_level_credited = serializers.IntegerField(
        help_text="Friends of friends who registered (the last level that earns)."
    )
    points_earned = serializers.IntegerField(help_text="Referral reward points credited.")


def _output(summary: ReferralSummary) -> ReferralOutput:
    return ReferralOutput(
        {
            "code": summary.code,
            "invite_path": invite_path(summary.code),
            "invite_link": invite_link(summary.code),
            "active": summary.active,
            "invitees_credited": summary.invitees_credited,
            "invitees_pending": summary.invitees_pending,
            "second_level_credited": summary.second_level_credited,
            "points_earned": summary.points_earned,
        }
    )


class ReferralClaimInput(serializers.Serializer):
    code = serializers.CharField(max_length=20)
    device_id = serializers.CharField(max_length=MAX_DEVICE_ID_LENGTH)
    level = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Optional. Rewards stop at level 2; anything deeper is refused.",
    )


class ReferralClaimOutput(serializers.Serializer):
    status = serializers.CharField(help_text="`pending`: credited when you register.")
    inviter_id = serializers.IntegerField()


class MyReferralApi(APIView):
    """My invite code, link and what inviting has earned me."""

    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [IsMember]

    @extend_schema(responses={200: ReferralOutput, 401: ERROR})
    def get(self, request: Request) -> Response:
        summary = referral_summary(member=request.user.member)  # type: ignore[union-attr]
        return Response(_output(summary).data)


class ReferralClaimApi(APIView):
    """Accept a friend's invite (opened from their link or typed code); the friend is
    rewarded once this member registers by binding a phone."""

    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [IsMember]

    @extend_schema(
        request=ReferralClaimInput,
        responses={201: ReferralClaimOutput, 400: ERROR, 404: ERROR, 409: ERROR},
    )
    def post(self, request: Request) -> Response:
        data = ReferralClaimInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            referral = referral_claim(
                invitee=request.user.member,  # type: ignore[union-attr]
                code=data.validated_data["code"],
                device_id=data.validated_data["device_id"],
                level=data.validated_data.get("level"),
            )
        except MemberError as exc:
            raise ApiError(exc.code, exc.message, exc.status) from exc
        return Response(
            ReferralClaimOutput(
                {"status": referral.status, "inviter_id": referral.inviter_id}
            ).data,
            status=201,
        )
