from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from members.api.auth import MemberPrincipal, MemberTokenAuthentication
from members.services.errors import MemberError
from scrm.core.api import ApiError
from touchpoints.api.auth import ClientPrincipal, EventKeyAuthentication, IsEventSource
from touchpoints.api.serializers import EventBatchInput, EventBatchOutput
from touchpoints.services.events import events_ingest

ERROR = OpenApiResponse(description='JSON error: {"code": "...", "message": "..."}')


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
