"""API plumbing: every error is JSON `{"code": …, "message": …}` with a stable code.

Validation errors add `fields` (field → list of messages). Clients match on `code`;
`message` is for people, in the request's language.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(exceptions.APIException):
    """Raise from an API view with a stable code, a message and an HTTP status."""

    def __init__(self, code: str, message: Any, status_code: int = 400) -> None:
        super().__init__(detail=str(message), code=code)
        self.status_code = status_code
        self.error_code = code


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_message(value)
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        body: dict[str, Any] = {"code": exc.error_code, "message": str(exc.detail)}
    elif isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = {
            "code": "invalid",
            "message": _("Some fields are not valid: %(detail)s")
            % {"detail": _first_message(exc.detail)},
            "fields": fields,
        }
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        body = {
            "code": codes if isinstance(codes, str) else exc.default_code,
            "message": _first_message(exc.detail),
        }
    else:  # pragma: no cover - DRF only handles APIException subclasses
        return response
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        body["code"] = body["code"] if isinstance(exc, ApiError) else "not_authenticated"
    response.data = body
    return response
