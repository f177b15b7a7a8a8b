"""Sign-in protection: who the client is, how many failures lock them out, and what a
locked-out client is told.

django-axes counts failed sign-ins per user name and client address and refuses that pair
for `AXES_COOLOFF_TIME` once they reach the limit. The staff sign-in (HQ, /m/) and the
admin go through Django's `authenticate`, which axes watches. The mini-program's token
endpoints (WeChat sign-in, token refresh) have no user name: they count their failures
under the endpoint's name per address through `token_guard`, with a higher limit — many
customers share a shop's or a carrier's address."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from scrm.core.api import ApiError

API_PREFIX = "api:"
API_FAILURE_LIMIT_DEFAULT = 30


LOCKOUT_STATUS = 429


class TokenLockedOut(ApiError):
    """Too many failed attempts at a token endpoint from this address: 429, with
    Retry-After (DRF sets it from `wait`)."""

    def __init__(self, minutes: int) -> None:
        super().__init__("locked_out", _lockout_message(minutes), LOCKOUT_STATUS)
        self.wait = minutes * 60


def _lockout_message(minutes: int) -> str:
    return _("Too many failed attempts from this address. Try again in %(n)s minutes.") % {
        "n": minutes
    }


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the peer's, or — behind `TRUSTED_PROXY_COUNT` proxies — the
    one the outermost proxy saw (entries further left are the client's own say-so)."""
    count = settings.TRUSTED_PROXY_COUNT
    if count:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR")


def failure_limit(request: HttpRequest, credentials: dict[str, Any] | None) -> int:
    username = (credentials or {}).get("username") or ""
    if str(username).startswith(API_PREFIX):
        return int(getattr(settings, "LOGIN_API_FAILURE_LIMIT", API_FAILURE_LIMIT_DEFAULT))
    return int(getattr(settings, "LOGIN_FAILURE_LIMIT", 5))


def lockout_minutes(request: HttpRequest | None = None) -> int:
    cool_off = get_cool_off(request)
    return max(1, int(cool_off.total_seconds() // 60)) if cool_off else 0


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any = None
) -> HttpResponse:
    """A locked-out sign-in: the sign-in page saying so (429), or JSON for the API."""
    minutes = lockout_minutes(request)
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"code": "locked_out", "message": _lockout_message(minutes)}, status=LOCKOUT_STATUS
        )
        response["Retry-After"] = str(minutes * 60)
        return response
    return render(
        request,
        "registration/locked_out.html",
        {"minutes": minutes, "mobile": request.path.startswith("/m/")},
        status=LOCKOUT_STATUS,
    )


@contextmanager
def token_guard(
    request: Any, endpoint: str, is_failure: Callable[[Exception], bool]
) -> Iterator[None]:
    """Refuse a token endpoint's request while its address is locked out (TokenLockedOut);
    count a failed attempt when the body raises an exception `is_failure` accepts (and
    re-raise it)."""
    django_request: HttpRequest = getattr(request, "_request", request)
    credentials = {"username": f"{API_PREFIX}{endpoint}"}
    if AxesProxyHandler.is_locked(django_request, credentials):
        raise TokenLockedOut(lockout_minutes(django_request))
    try:
        yield
    except Exception as exc:
        if is_failure(exc):
            user_login_failed.send(sender=__name__, credentials=credentials, request=django_request)
            # This failure's own answer stays the endpoint's error; the lockout applies
            # from the next request on.
            django_request.axes_locked_out = False  # type: ignore[attr-defined]
        raise
