"""Server error pages. A lost database connection (a restart, a failover, the server
down) is not a bug in a page: it answers 503 with a clear message and Retry-After, and
Django drops the broken connection at the end of the request, so the next request
connects again and the application recovers without a restart."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.defaults import page_not_found

RETRY_AFTER_SECONDS = 30


def _database_unreachable() -> bool:
    error = sys.exc_info()[1]
    while error is not None:
        if isinstance(error, OperationalError | InterfaceError):
            return True
        error = error.__cause__ or error.__context__
    return False


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. Rendered without the request's context: the page must not need the
    database (the signed-in user, the session) to say the database is gone."""
    unreachable = _database_unreachable()
    status = 503 if unreachable else 500
    if unreachable:
        message = _(
            "The database cannot be reached at the moment. Nothing was changed; "
            "try again in a minute."
        )
    else:
        message = _(
            "Something went wrong on our side. The error has been logged; try again, "
            "or tell head office if it keeps happening."
        )
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"code": "unavailable" if unreachable else "server_error", "message": message},
            status=status,
        )
    else:
        response = HttpResponse(
            render_to_string("error.html", {"status": status, "message": message}),
            status=status,
        )
    if unreachable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404. An address under /api/ that matches no endpoint answers in the API's
    error format, like every other API error, instead of the back office's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "not_found", "message": _("There is no such API address; check the path.")},
            status=404,
        )
    return page_not_found(request, exception)
