"""`Idempotency-Key` for POSTs that move points or stock.

The first request with a key is recorded (committed) before it runs, then its answer is
stored. A replay of the same key and body gets that answer again; the same key with a
different body is refused with 422; a replay that arrives while the first is still
running gets 409 and should retry shortly. A request that fails unexpectedly forgets its
key, so the client can retry with it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from members.models import IdempotentRequest
from scrm.core.api import ApiError

HEADER = "Idempotency-Key"

IDEMPOTENCY_KEY = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="A fresh random value per action (at most 100 characters); a replay of the "
    "same key and body gets the first answer again.",
)


def _body_hash(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(f"{request.path}\n{body}".encode()).hexdigest()


def idempotent(endpoint: str) -> Callable[..., Any]:
    def decorate(handler: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(handler)
        def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
            key = (request.headers.get(HEADER) or "").strip()
            if not key:
                raise ApiError(
                    "idempotency_key_missing",
                    _("Send an Idempotency-Key header (a fresh random value per action)."),
                    400,
                )
            if len(key) > 100:
                raise ApiError(
                    "idempotency_key_invalid", _("The Idempotency-Key is too long."), 400
                )
            member = request.user.member  # type: ignore[union-attr]
            digest = _body_hash(request)
            try:
                with transaction.atomic():
                    record = IdempotentRequest.objects.create(
                        member=member, key=key, endpoint=endpoint, body_hash=digest
                    )
            except IntegrityError:
                first = IdempotentRequest.objects.get(member=member, key=key)
                if first.endpoint != endpoint or first.body_hash != digest:
                    raise ApiError(
                        "idempotency_key_reused",
                        _("This Idempotency-Key was used for a different request."),
                        422,
                    ) from None
                if not first.finished:
                    raise ApiError(
                        "request_in_progress",
                        _("The same request is still being processed; retry in a moment."),
                        409,
                    ) from None
                response = Response(first.response, status=first.status_code)
                response["Idempotent-Replay"] = "true"
                return response
            try:
                response = handler(view, request, *args, **kwargs)
            except ApiError as refused:
                # A clear refusal is an answer too: the same request gets it again.
                body = {"code": refused.error_code, "message": str(refused.detail)}
                _finish(record, refused.status_code, body)
                raise
            except BaseException:
                record.delete()
                raise
            _finish(record, response.status_code, response.data)
            return response

        return wrapper

    return decorate


def _finish(record: IdempotentRequest, status_code: int, body: Any) -> None:
    record.finished = True
    record.status_code = status_code
    record.response = json.loads(json.dumps(body, default=str))
    record.save(update_fields=["finished", "status_code", "response"])
