"""The mini-program's message centre: a member's in-app inbox."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import InboxMessage
from campaigns.services.tracking import inbox_read
from members.api.auth import IsMember, MemberTokenAuthentication
from scrm.core.api import ApiError
from scrm.core.openapi import ERROR


class InboxMessageOutput(serializers.ModelSerializer[InboxMessage]):
    class Meta:
        model = InboxMessage
        fields = ["id", "title", "body", "link_url", "created_at", "read_at"]


class InboxListApi(ListAPIView):
    """The member's messages, newest first (paginated); `?unread=1` for unread only."""

    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [IsMember]
    serializer_class = InboxMessageOutput

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no member
            return InboxMessage.objects.none()
        messages = InboxMessage.objects.filter(member=self.request.user.member)  # type: ignore[union-attr]
        if self.request.query_params.get("unread") == "1":
            messages = messages.filter(read_at__isnull=True)
        return messages.order_by("-created_at", "-pk")


class InboxReadApi(APIView):
    """Mark one of the member's messages read, and its delivery opened (reading twice
    keeps the first time)."""

    authentication_classes = [MemberTokenAuthentication]
    permission_classes = [IsMember]

    @extend_schema(request=None, responses={200: InboxMessageOutput, 404: ERROR})
    def post(self, request: Request, message_id: int) -> Response:
        member = request.user.member  # type: ignore[union-attr]
        message = InboxMessage.objects.filter(pk=message_id, member=member).first()
        if message is None:
            raise ApiError("message_not_found", _("No such message."), 404)
        inbox_read(message=message)
        message.refresh_from_db()
        return Response(InboxMessageOutput(message).data)
