"""HQ page for RFM and the value matrix (step 6): classes with members and spend, score
distributions, movements between classes, and the settings."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_http_methods, require_POST

from members import selectors
from members.forms.tags import RfmSettingsForm
from members.models import RfmSettings
from members.services.rfm import rfm_settings_save
from scrm.core.access import hq_required
from scrm.core.exports import table_download, wanted_format, wanted_table


def _score_rows(overview: dict[str, Any]) -> list[tuple[int, int, int, int]]:
    scores = overview["scores"]
    return [
        (score, scores["r"][score - 1], scores["f"][score - 1], scores["m"][score - 1])
        for score in range(5, 0, -1)
    ]


def _rfm_download(request: HttpRequest, file_format: str, is_hq: bool) -> HttpResponse:
    """The page's tables: classes (""), scores, the value matrix ("cells") and, for head
    office, the movements of the last 30 days (all of them; the page shows 200)."""
    table = wanted_table(request)
    if table == "movements":
        if not is_hq:
            raise Http404
        nobody = _("no purchase")
        return table_download(
            file_format=file_format,
            filename="rfm-movements",
            header=[_("Day"), _("From"), _("To"), _("Members")],
            rows=(
                [move.day, move.from_class or nobody, move.to_class or nobody, move.members]
                for move in selectors.rfm_movements(limit=None)
            ),
        )
    overview = selectors.rfm_overview(user=request.user)
    if table == "scores":
        return table_download(
            file_format=file_format,
            filename="rfm-scores",
            header=[_("Score"), "R", "F", "M"],
            rows=_score_rows(overview),
        )
    if table == "cells":
        return table_download(
            file_format=file_format,
            filename="rfm-value-matrix",
            header=[_("Value matrix"), _("Members")],
            rows=([cell["name"], cell["members"]] for cell in overview["cells"]),
        )
    return table_download(
        file_format=file_format,
        filename="rfm-classes",
        header=[
            _("Class"),
            "R F M",
            _("Members"),
            pgettext("proportion", "Share"),
            _("Spend in window"),
        ]
        + [_("Average")],
        rows=(
            [row["name"], row["code"], row["members"], f"{row['share']}%"]
            + [row["spend"], row["average"]]
            for row in overview["classes"]
        ),
    )


@hq_required
def rfm_page(request: HttpRequest) -> HttpResponse:
    is_hq = getattr(request.user, "is_hq", False)
    if file_format := wanted_format(request):
        return _rfm_download(request, file_format, is_hq)
    overview = selectors.rfm_overview(user=request.user)
    return render(
        request,
        "members/hq/rfm.html",
        {
            **overview,
            "movements": selectors.rfm_movements() if is_hq else [],
            "form": RfmSettingsForm(instance=RfmSettings.current()) if is_hq else None,
            "score_rows": _score_rows(overview),
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
