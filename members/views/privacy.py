"""Data-subject requests from head office: a member's archive, and erasure."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from members import selectors
from members.models import Member
from members.services.errors import MemberError
from members.services.privacy import HOLDINGS, member_erase, member_export_archive, person_ids
from scrm.core.access import head_office_required

head_office_only = head_office_required(
    gettext_lazy("Only head-office staff handle requests to export or erase personal data.")
)


def _member(request: HttpRequest, member_id: int) -> Member:
    member = selectors.member_for_profile(user=request.user, member_id=member_id)
    if member is None:
        raise Http404
    return member


@head_office_only
def member_privacy(request: HttpRequest, member_id: int) -> HttpResponse:
    member = _member(request, member_id)
    # Everyone merged into them, along chains of merges: what the archive and the
    # erasure cover.
    merged = len(person_ids(member)) - 1
    return render(
        request,
        "members/hq/member_privacy.html",
        {"member": member, "merged": merged, "tables": len({h.label for h in HOLDINGS})},
    )


@head_office_only
@require_POST
def member_privacy_export(request: HttpRequest, member_id: int) -> HttpResponse:
    member = _member(request, member_id)
    archive = member_export_archive(member=member, actor=request.user, origin=request.path)
    response = HttpResponse(archive, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="member-{member.pk}-personal-data.zip"'
    response["Cache-Control"] = "no-store"
    return response


@head_office_only
@require_http_methods(["GET", "POST"])
def member_privacy_erase(request: HttpRequest, member_id: int) -> HttpResponse:
    member = _member(request, member_id)
    error = ""
    if request.method == "POST":
        typed = request.POST.get("confirm", "").strip().lstrip("#")
        if typed != str(member.pk):
            error = _("Type the member number %(id)s to confirm.") % {"id": member.pk}
        else:
            try:
                result = member_erase(member=member, actor=request.user, origin=request.path)
            except MemberError as exc:
                messages.error(request, str(exc.message))
                return redirect("hq:member-privacy", member_id=member.pk)
            messages.success(
                request,
                _(
                    "Personal data of member #%(id)s erased: %(deleted)s records deleted, "
                    "%(scrubbed)s blanked."
                )
                % {
                    "id": member.pk,
                    "deleted": sum(result.deleted.values()),
                    "scrubbed": sum(result.scrubbed.values()),
                },
            )
            return redirect("hq:member-profile", member_id=member.pk)
    return render(
        request,
        "members/hq/member_erase.html",
        {"member": member, "error": error},
        status=400 if error else 200,
    )
