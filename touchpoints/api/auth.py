"""`Authorization: EventKey <key>`: a system that posts behaviour events for anyone."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from touchpoints.models import EventClient


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_event_key() -> str:
    return "ek_" + secrets.token_urlsafe(24)


class ClientPrincipal:
    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, client: EventClient) -> None:
        self.client = client
        self.pk = client.pk

    def has_perm(self, perm: str) -> bool:
        return False


class EventKeyAuthentication(authentication.BaseAuthentication):
    keyword = "EventKey"

    def authenticate(self, request: Request) -> tuple[ClientPrincipal, str] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _sep, key = header.partition(" ")
        if scheme != self.keyword:
            return None
        client = EventClient.objects.filter(key_hash=key_hash(key.strip()), active=True).first()
        if client is None:
            raise exceptions.AuthenticationFailed(_("Unknown or switched-off event key."))
        return ClientPrincipal(client), key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class IsEventSource(permissions.BasePermission):
    message = _("Send an event key, or a member's access token.")

    def has_permission(self, request: Request, view: Any) -> bool:
        from members.api.auth import MemberPrincipal

        return isinstance(request.user, ClientPrincipal | MemberPrincipal)


class EventKeyScheme(OpenApiAuthenticationExtension):
    target_class = "touchpoints.api.auth.EventKeyAuthentication"
    name = "eventKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization"}
