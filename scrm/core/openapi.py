"""The OpenAPI schema's shared parts: the error body every API error answers with, and a
schema class that documents the errors DRF itself answers before a view runs."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers


class ErrorOutput(serializers.Serializer):
    code = serializers.CharField(help_text="Stable error code; clients match on it.")
    message = serializers.CharField(help_text="For people, in the request's language.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # Declared here because a class attribute named `fields` would shadow
        # Serializer.fields.
        fields = super().get_fields()
        fields["fields"] = serializers.DictField(
            child=serializers.JSONField(),
            required=False,
            help_text="Validation errors only: field → messages (nested for nested fields).",
        )
        return fields


ERROR = OpenApiResponse(ErrorOutput, description='JSON error: {"code": "...", "message": "..."}')

_WRITE_METHODS = {"POST", "PUT", "PATCH"}


class ApiSchema(AutoSchema):
    """Adds to each operation the error answers it can give whatever the view declares:
    401/403 when it needs a principal, 400 when it reads a body, query or header parameters,
    and
    404 for a page number past the end of a paginated list."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        codes = self._refusal_codes(operation)
        responses = operation.setdefault("responses", {})
        missing = [code for code in sorted(codes) if str(code) not in responses]
        if missing:
            error = self._get_response_for_code(ERROR, "400")
            for code in missing:
                responses[str(code)] = error
        return operation

    def _refusal_codes(self, operation: dict[str, Any]) -> set[int]:
        codes: set[int] = set()
        view = self.view
        checks = view.get_permissions()
        if any(not isinstance(check, permissions.AllowAny) for check in checks):
            authenticators = view.get_authenticators()
            # DRF answers 401 when the first authenticator names a scheme for
            # WWW-Authenticate, else 403 (session sign-in, failed CSRF check).
            challenge = authenticators and authenticators[0].authenticate_header(view.request)
            codes.add(401 if challenge else 403)
        if self.method in _WRITE_METHODS and "requestBody" in operation:
            codes.add(400)  # malformed JSON or a field that does not validate
        if any(param.get("in") in ("query", "header") for param in operation.get("parameters", [])):
            codes.add(400)
        if self.method == "GET" and self._is_list_view() and self._get_paginator():
            codes.add(404)  # DRF's answer to ?page= past the last page or not a number
        return codes
