from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from members import selectors
from members.forms import MemberFilterForm
from members.models import Member, MemberMerge, MergeSuggestion, can_see_full_phone
from members.profile_sections import PROFILE_TABLES, sections_for
from members.services import merge as merge_services
from members.services import phones as phone_services
from members.services.errors import MemberError
from members.views.downloads import member_download
from scrm.core.access import head_office_required, hq_required
from scrm.core.exports import table_download, wanted_format, wanted_table

# Merging people and running imports touch many records: head-office roles only.
head_office_only = head_office_required(
    gettext_lazy("Only head-office staff can review and merge duplicate members.")
)
PAGE_SIZE = 25


def _too_many() -> str:
    return _("%(count)s members match: narrow the filters to %(limit)s or fewer to export.")


@hq_required
def member_list(request: HttpRequest) -> HttpResponse:
    form = MemberFilterForm(request.GET or None, user=request.user)
    filters = form.filters() if request.GET else MemberFilterForm.empty_filters()
    members = selectors.member_list(user=request.user, **filters)
    if file_format := wanted_format(request):
        query = request.GET.copy()
        del query["format"]
        return member_download(
            request,
            members,
            file_format=file_format,
            filename="members",
            too_many=_too_many(),
            back=f"{request.path}?{query.urlencode()}",
        )
    page = Paginator(members, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "members/hq/member_list.html",
        {
            "form": form,
            "page": page,
            "filtered": any(filters.values()),
        },
    )


@hq_required
def member_export(request: HttpRequest) -> HttpResponse:
    form = MemberFilterForm(request.GET or None, user=request.user)
    filters = form.filters() if request.GET else MemberFilterForm.empty_filters()
    file_format = request.GET.get("format", "csv")
    if file_format not in {"csv", "xlsx"}:
        messages.error(request, _("Choose CSV or XLSX for the export."))
        return redirect("hq:members")
    members = selectors.member_list(user=request.user, **filters)
    query = request.GET.copy()
    query.pop("format", None)
    return member_download(
        request,
        members,
        file_format=file_format,
        filename="members",
        too_many=_too_many(),
        back=f"{request.path.removesuffix('export/')}?{query.urlencode()}",
    )


@hq_required
def member_profile(request: HttpRequest, member_id: int) -> HttpResponse:
    member = selectors.member_for_profile(user=request.user, member_id=member_id)
    if member is None:
        raise Http404
    if file_format := wanted_format(request):
        table = PROFILE_TABLES.get(wanted_table(request))
        if table is None:
            raise Http404
        header, rows = table.rows(member, request.user)
        return table_download(
            file_format=file_format,
            filename=f"member-{member.pk}-{table.key}",
            header=header,
            rows=rows,
        )
    return _profile_page(request, member, phone=member.masked_phone, revealed=False)


def _profile_page(
    request: HttpRequest, member: Member, *, phone: str, revealed: bool
) -> HttpResponse:
    response = render(
        request,
        "members/hq/member_profile.html",
        {
            "member": member,
            "phone": phone,
            "revealed": revealed,
            "can_reveal": can_see_full_phone(request.user) and member.has_phone and not revealed,
            "sections": sections_for(member, request.user),
        },
    )
    if revealed:
        response["Cache-Control"] = "no-store"  # the full number stays out of caches
    return response


@hq_required
@require_POST
def member_phone_reveal(request: HttpRequest, member_id: int) -> HttpResponse:
    """The profile with the full phone shown, once, for this answer: needs view_full_phone
    and a member in the user's scope, and is recorded in the audit log."""
    member = selectors.member_for_profile(user=request.user, member_id=member_id)
    if member is None:
        raise Http404
    phone = phone_services.member_unmask_phone(
        user=request.user, member=member, origin=request.path
    )
    return _profile_page(request, member, phone=phone or member.masked_phone, revealed=bool(phone))


@head_office_only
def duplicates(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.open_suggestions(user=request.user), 10).get_page(
        request.GET.get("page")
    )
    return render(request, "members/hq/duplicates.html", {"page": page})


def _suggestion(request: HttpRequest, suggestion_id: int) -> MergeSuggestion:
    suggestion = selectors.open_suggestions(user=request.user).filter(pk=suggestion_id).first()
    if suggestion is None:
        raise Http404
    return suggestion


@head_office_only
@require_http_methods(["GET", "POST"])
def merge_confirm(request: HttpRequest, suggestion_id: int) -> HttpResponse:
    suggestion = _suggestion(request, suggestion_id)
    pair = {
        suggestion.member_a.pk: suggestion.member_a,
        suggestion.member_b.pk: suggestion.member_b,
    }
    try:
        keep_id = int(request.POST.get("keep") or request.GET.get("keep") or 0)
    except ValueError:
        keep_id = 0
    if keep_id not in pair:
        messages.error(request, _("Choose which of the two members to keep."))
        return redirect("hq:member-duplicates")
    keep = pair.pop(keep_id)
    drop = next(iter(pair.values()))
    if request.method == "POST":
        try:
            merge = merge_services.member_merge(
                keep=keep, drop=drop, actor=request.user, suggestion=suggestion
            )
        except MemberError as exc:
            messages.error(request, str(exc.message))
            return redirect("hq:member-duplicates")
        messages.success(
            request,
            _("Merged #%(drop)s into #%(keep)s. You can undo this from the merge history.")
            % {"drop": drop.pk, "keep": keep.pk},
        )
        return redirect("hq:member-profile", member_id=merge.kept_id)
    return render(
        request,
        "members/hq/merge_confirm.html",
        {"suggestion": suggestion, "keep": keep, "drop": drop},
    )


@head_office_only
@require_POST
def suggestion_dismiss(request: HttpRequest, suggestion_id: int) -> HttpResponse:
    suggestion = _suggestion(request, suggestion_id)
    try:
        merge_services.merge_suggestion_dismiss(suggestion=suggestion, actor=request.user)
    except MemberError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Marked as two different people."))
    return redirect("hq:member-duplicates")


@head_office_only
def merge_history(request: HttpRequest) -> HttpResponse:
    merges = selectors.merge_history(user=request.user)
    if file_format := wanted_format(request):
        return table_download(
            file_format=file_format,
            filename="member-merges",
            header=[_("Merged at"), _("Kept"), _("Merged away"), _("By"), _("Status")],
            rows=(
                [
                    merge.merged_at,
                    f"#{merge.kept_id} {merge.kept}",
                    f"#{merge.dropped_id} {merge.dropped}",
                    str(merge.merged_by or ""),
                    _("undone %(when)s by %(who)s")
                    % {
                        "when": timezone.localtime(merge.undone_at).strftime("%Y-%m-%d %H:%M"),
                        "who": merge.undone_by,
                    }
                    if merge.undone_at
                    else "",
                ]
                for merge in merges
            ),
        )
    page = Paginator(merges, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "members/hq/merge_history.html", {"page": page})


@head_office_only
@require_http_methods(["GET", "POST"])
def merge_undo(request: HttpRequest, merge_id: int) -> HttpResponse:
    merge: MemberMerge | None = (
        selectors.merge_history(user=request.user).filter(pk=merge_id).first()
    )
    if merge is None:
        raise Http404
    if request.method == "POST":
        try:
            merge_services.member_merge_undo(merge=merge, actor=request.user)
        except MemberError as exc:
            messages.error(request, str(exc.message))
            return redirect("hq:member-merges")
        messages.success(
            request,
            _("Merge undone: #%(drop)s is a separate member again.") % {"drop": merge.dropped_id},
        )
        return redirect("hq:member-merges")
    return render(request, "members/hq/merge_undo.html", {"merge": merge})
