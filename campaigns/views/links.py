"""/l/<token>: a tracked link in a message, followed by a member (no login)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from campaigns.services.tracking import link_follow
from members.services.errors import MemberError


@never_cache
@require_GET
def tracked_link(request: HttpRequest, token: str) -> HttpResponse:
    """Record the click and go on to the material's link (302); a bad link is a 404."""
    try:
        url = link_follow(token=token)
    except MemberError:
        return render(request, "campaigns/link_not_found.html", status=404)
    response = HttpResponseRedirect(url)
    response["Referrer-Policy"] = "no-referrer"  # the token stays ours
    return response
