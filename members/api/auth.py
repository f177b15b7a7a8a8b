"""Bearer-token authentication for the mini-program's member endpoints."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from members.models import Member, MemberSession
from members.services.auth import session_from_access_token


class MemberPrincipal:
    """`request.user` for a signed-in member (not a staff account)."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, session: MemberSession) -> None:
        self.session = session
        self.member: Member = session.member
        self.pk = self.member.pk

    def has_perm(self, perm: str) -> bool:
        return False

    def __str__(self) -> str:
        return f"member #{self.member.pk}"


class MemberTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[MemberPrincipal, str] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _sep, token = header.partition(" ")
        if scheme != self.keyword or not token.strip():
            raise exceptions.AuthenticationFailed(
                _("Send the access token as “Authorization: Bearer <token>”.")
            )
        session = session_from_access_token(token.strip())
        if session is None:
            raise exceptions.AuthenticationFailed(
                _("The access token is invalid or expired; refresh it or sign in again.")
            )
        return MemberPrincipal(session), token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class IsMember(permissions.BasePermission):
    message = _("Sign in with the mini-program first.")

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, MemberPrincipal)


class MemberTokenScheme(OpenApiAuthenticationExtension):
    target_class = "members.api.auth.MemberTokenAuthentication"
    name = "memberToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Access token from /api/v1/auth/wechat-login",
        }
