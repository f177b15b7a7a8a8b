from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from members.api.auth import IsMember, MemberPrincipal, MemberTokenAuthentication
from members.services.errors import MemberError
from scrm.core.api import ApiError
from scrm.core.openapi import ERROR
from touchpoints.api.auth import ClientPrincipal, EventKeyAuthentication, IsEventSource
from touchpoints.api.serializers import (
    EventBatchInput,
    EventBatchOutput,
    SurveyAnswerInput,
    SurveyAnswerOutput,
    SurveyInvitationOutput,
)
from touchpoints.models import SurveyInvitation
from touchpoints.services.events import events_ingest
from touchpoints.services.feedback import survey_answer


class EventBatchApi(APIView):
    """Behaviour events in batches of up to 500. Each bad event is refused with its index,
    id, code and reason; the good ones are kept. A replayed event id counts as a duplicate
    and changes nothing. Send `Authorization: EventKey <key>` (events name the person's
    identity) or a member's `Bearer` token (their own events; identity optional)."""

    authentication_classes = [EventKeyAuthentication, MemberTokenAuthentication]
    permission_classes = [IsEventSource]

    @extend_schema(
        request=EventBatchInput,
        responses={200: EventBatchOutput, 400: ERROR, 401: ERROR, 413: ERROR},
    )
    def post(self, request: Request) -> Response:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise ApiError(
                "payload_too_large",
                _("The batch is larger than %(mb).1f MB.")
                % {"mb": settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1024 / 1024},
                413,
            )
        data: Any = request.data
        user = request.user
        try:
            result = events_ingest(
                events=data.get("events") if isinstance(data, dict) else None,
                client=user.client if isinstance(user, ClientPrincipal) else None,
                member_id=user.member.pk if isinstance(user, MemberPrincipal) else None,
            )
        except MemberError as exc:
            raise ApiError(exc.code, exc.message, exc.status) from exc
        return Response(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": [asdict(r) for r in result.rejected],
            }
        )


class SurveyListApi(APIView):
    """The member's surveys waiting for an answer, newest first."""

    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [IsMember]

    @extend_schema(responses={200: SurveyInvitationOutput(many=True), 401: ERROR})
    def get(self, request: Request) -> Response:
        member = request.user.member  # type: ignore[union-attr]
        pending = (
            SurveyInvitation.objects.filter(member=member, answered_at__isnull=True)
            .select_related("survey", "order")
            .prefetch_related("survey__questions")
            .filter(survey__active=True)
            .order_by("-sent_at")[:20]
        )
        return Response(SurveyInvitationOutput(pending, many=True).data)


class SurveyAnswerApi(APIView):
    """Answer one survey. A negative answer opens a ticket for the store."""

    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [IsMember]

    @extend_schema(
        request=SurveyAnswerInput,
        responses={200: SurveyAnswerOutput, 400: ERROR, 404: ERROR, 409: ERROR},
    )
    def post(self, request: Request, invitation_id: int) -> Response:
        data = SurveyAnswerInput(data=request.data)
        data.is_valid(raise_exception=True)
        extra: dict[int, Any] = {}
        for item in data.validated_data.get("answers", []):
            question = item.get("question")
            if not isinstance(question, int) or isinstance(question, bool):
                raise ApiError("question_unknown", _("Name each question by its id."))
            extra[question] = item.get("value")
        try:
            answer = survey_answer(
                invitation_id=invitation_id,
                member_id=request.user.member.pk,  # type: ignore[union-attr]
                score=data.validated_data["score"],
                comment=data.validated_data.get("comment", ""),
                category_ids=data.validated_data.get("categories", []),
                answers=extra,
            )
        except MemberError as exc:
            raise ApiError(exc.code, exc.message, exc.status) from exc
        return Response(
            {
                "id": answer.response.pk,
                "negative": answer.response.negative,
                "ticket": answer.ticket.pk if answer.ticket else None,
            }
        )
