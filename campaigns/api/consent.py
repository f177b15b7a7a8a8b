"""The mini-program's privacy settings: the member's consent per purpose, granted or
withdrawn with one call each way."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import ConsentChannel, ConsentPurpose, ConsentSource
from campaigns.selectors.consent import ConsentState, consent_state, consent_states
from campaigns.services.consent import consent_record
from members.api.auth import IsMember, MemberTokenAuthentication
from members.services.errors import MemberError
from scrm.core.api import ApiError
from scrm.core.openapi import ERROR


class ConsentOutput(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    name = serializers.CharField(help_text="The purpose, in the request's language.")
    granted = serializers.BooleanField(
        allow_null=True, help_text="The latest decision; null when never asked."
    )
    effective = serializers.BooleanField(
        help_text=(
            "Whether the brand may act on it now: marketing on a channel not opted out; "
            "profiling of a child under 14 also needs a guardian's consent."
        )
    )
    needs_guardian = serializers.BooleanField(
        help_text="Profiling of a child under 14 waits for a guardian's consent (`sensitive`)."
    )
    decided_at = serializers.DateTimeField(allow_null=True)
    wording_version = serializers.CharField(help_text="The version of the wording to show.")
    wording = serializers.CharField(help_text="The wording to show when asking.")


def _output(state: ConsentState) -> dict[str, object]:
    return ConsentOutput(
        {
            "purpose": state.purpose,
            "name": str(state.label),
            "granted": state.granted,
            "effective": state.effective,
            "needs_guardian": state.needs_guardian,
            "decided_at": state.decided_at,
            "wording_version": state.wording.version,
            "wording": str(state.wording.text),
        }
    ).data


class ConsentInput(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices)
    granted = serializers.BooleanField(help_text="true to consent, false to withdraw.")
    wording_version = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=20,
        help_text="The wording version the member was shown (default: the current one).",
    )


class MyConsentsApi(APIView):
    """My consent per purpose (GET), and a decision on one purpose (POST): consenting and
    withdrawing are the same call. Withdrawing marketing on a channel stops messages on
    it from the next send."""

    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [IsMember]

    @extend_schema(responses={200: ConsentOutput(many=True), 401: ERROR})
    def get(self, request: Request) -> Response:
        member = request.user.member  # type: ignore[union-attr]
        return Response([_output(state) for state in consent_states(member=member)])

    @extend_schema(request=ConsentInput, responses={200: ConsentOutput, 400: ERROR, 401: ERROR})
    def post(self, request: Request) -> Response:
        data = ConsentInput(data=request.data)
        data.is_valid(raise_exception=True)
        member = request.user.member  # type: ignore[union-attr]
        try:
            consent_record(
                member=member,
                purpose=data.validated_data["purpose"],
                granted=data.validated_data["granted"],
                source=ConsentSource.MINI_PROGRAM,
                channel=ConsentChannel.MINI_PROGRAM,
                wording_version=data.validated_data.get("wording_version", ""),
            )
        except MemberError as exc:
            raise ApiError(exc.code, exc.message, exc.status) from exc
        state = consent_state(member=member, purpose=data.validated_data["purpose"])
        return Response(_output(state))
