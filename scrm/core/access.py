"""Who may open which workspace: /hq/ for HQ staff and managers, /m/ for guides."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

View = Callable[..., HttpResponse]


def _workspace_required(
    *, allowed: str, login_url: str, refusal: Promise
) -> Callable[[View], View]:
    """A decorator: anonymous visitors go to `login_url`; signed-in people whose role lacks
    `allowed` get a 403 page that says why and links to the workspace they do have."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user: Any = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse(login_url))
            if not getattr(user, allowed):
                home = (
                    reverse(user.landing_url_name)
                    if (user.can_use_hq or user.can_use_mobile)
                    else reverse("login")
                )
                return render(
                    request, "403.html", {"message": refusal, "home_url": home}, status=403
                )
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def head_office_required(refusal: Promise) -> Callable[[View], View]:
    """For pages only head-office roles use (merging people, imports): managers get a 403
    that says so, in `refusal`."""
    return _workspace_required(allowed="is_hq", login_url="hq_login", refusal=refusal)


hq_required = _workspace_required(
    allowed="can_use_hq",
    login_url="hq_login",
    refusal=_(
        "This page is for head-office staff and store managers. "
        "Guides work in the mobile workspace."
    ),
)
mobile_required = _workspace_required(
    allowed="can_use_mobile",
    login_url="mobile_login",
    refusal=_("The mobile workspace is for store guides and store managers."),
)
audit_viewer_required = _workspace_required(
    allowed="can_view_audit",
    login_url="hq_login",
    refusal=_("The audit trail is for head-office admins."),
)
