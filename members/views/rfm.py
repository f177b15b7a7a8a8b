"""HQ page for RFM and the value matrix (step 6): classes with members and spend, score
distributions, movements between classes, and the settings."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from members import selectors
from members.forms.tags import RfmSettingsForm
from members.models import RfmSettings
from members.services.rfm import rfm_settings_save
from scrm.core.access import hq_required


@hq_required
def rfm_page(request: HttpRequest) -> HttpResponse:
    overview = selectors.rfm_overview(user=request.user)
    is_hq = getattr(request.user, "is_hq", False)
    return render(
        request,
        "members/hq/rfm.html",
        {
            **overview,
            "movements": selectors.rfm_movements() if is_hq else [],
            "form": RfmSettingsForm(instance=RfmSettings.current()) if is_hq else None,
            "score_rows": [
                (
                    score,
                    overview["scores"]["r"][score - 1],
                    overview["scores"]["f"][score - 1],
                    overview["scores"]["m"][score - 1],
                )
                for score in range(5, 0, -1)
            ],
        },
    )


@hq_required
@require_http_methods(["POST"])
def rfm_settings(request: HttpRequest) -> HttpResponse:
    if not getattr(request.user, "is_hq", False):
        messages.error(request, _("Only head-office staff can change the RFM settings."))
        return redirect("hq:rfm")
    form = RfmSettingsForm(request.POST, instance=RfmSettings.current())
    if not form.is_valid():
        overview = selectors.rfm_overview(user=request.user)
        return render(
            request,
            "members/hq/rfm.html",
            {**overview, "movements": selectors.rfm_movements(), "form": form, "score_rows": []},
            status=400,
        )
    rfm_settings_save(form=form, actor=request.user)
    messages.success(request, _("Saved the RFM settings."))
    return redirect("hq:rfm")


@hq_required
@require_POST
def rfm_recompute(request: HttpRequest) -> HttpResponse:
    if not getattr(request.user, "is_hq", False):
        messages.error(request, _("Only head-office staff can recompute RFM."))
        return redirect("hq:rfm")
    from django.db import transaction

    from members.tasks import recompute_rfm

    transaction.on_commit(recompute_rfm.delay)
    messages.success(
        request, _("Recomputing every buyer's RFM in the background; refresh in a minute.")
    )
    return redirect("hq:rfm")
