"""Who may open which workspace: /hq/ for HQ staff and managers, /m/ for guides."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _


def _forbidden(request: HttpRequest, message: str, home_url: str) -> HttpResponse:
    return render(request, "403.html", {"message": message, "home_url": home_url}, status=403)


def hq_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("hq_login"))
        if not user.can_use_hq:
            return _forbidden(
                request,
                _(
                    "This page is for head-office staff and store managers. "
                    "Guides work in the mobile workspace."
                ),
                reverse("mobile:home") if user.can_use_mobile else reverse("login"),
            )
        return view(request, *args, **kwargs)

    return wrapped


def mobile_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("mobile_login"))
        if not user.can_use_mobile:
            return _forbidden(
                request,
                _("The mobile workspace is for store guides and store managers."),
                reverse("hq:home") if user.can_use_hq else reverse("login"),
            )
        return view(request, *args, **kwargs)

    return wrapped
