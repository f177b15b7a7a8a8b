"""HQ pages for step 6 (分群组): segment list, the builder with a live count, a segment's
page (size history, sample, export), freeze and archive."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from members.forms.tags import SegmentForm
from members.forms_segments_upload import SegmentUploadForm
from members.models import Segment, Tag, Tier
from members.segments.evaluate import SegmentTimeout, check_rules, live_count
from members.segments.rules import FIELDS, RuleError
from members.services.errors import MemberError
from members.services.segments import (
    ListColumn,
    ListNothingMatched,
    segment_archive,
    segment_freeze,
    segment_list_create,
    segment_list_rejected,
    segment_list_summary,
    segment_members,
    segment_save,
)
from members.views.downloads import member_download
from scrm.core.access import hq_required
from scrm.core.exports import table_download, wanted_format, wanted_table
from scrm.core.tabular import spreadsheet_safe
from scrm.org.models import Store

OPERATOR_LABELS = {
    "in": gettext_lazy("is one of"),
    "between": gettext_lazy("between"),
    "within_days": gettext_lazy("in the last N days"),
    "before_days": gettext_lazy("more than N days ago"),
    "not_within_days": gettext_lazy("not in the last N days"),
    "never": gettext_lazy("never"),
    "any": gettext_lazy("has any of"),
    "all": gettext_lazy("has all of"),
    "none": gettext_lazy("has none of"),
    "gte": gettext_lazy("at least"),
    "lte": gettext_lazy("at most"),
    "category": gettext_lazy("a category"),
    "sku": gettext_lazy("a SKU"),
}

NO_TIER = gettext_lazy("has no tier")


def _stores(user: Any) -> Any:
    return Store.objects.for_user(user)


def _segment(request: HttpRequest, pk: int) -> Segment:
    segment: Segment | None = Segment.objects.for_user(request.user).filter(pk=pk).first()
    if segment is None:
        raise Http404
    return segment


@hq_required
def segment_list(request: HttpRequest) -> HttpResponse:
    show_archived = request.GET.get("archived") == "1"
    segments: Any = (
        Segment.objects.for_user(request.user)
        .filter(archived=show_archived)
        .select_related("store", "created_by")
    )
    search = request.GET.get("q", "").strip()
    if search:
        segments = segments.filter(name__icontains=search)
    if file_format := wanted_format(request):
        return table_download(
            file_format=file_format,
            filename="segments",
            header=[
                *(_("Name"), capfirst(_("description")), _("Kind"), _("Members"), _("Counted")),
                *(_("Store"), _("Created by")),
            ],
            rows=(
                [
                    s.name,
                    s.description,
                    s.get_kind_display(),
                    s.size,
                    s.sized_at,
                    s.store.name if s.store else _("Head office"),
                    str(s.created_by) if s.created_by else "",
                ]
                for s in segments
            ),
        )
    page = Paginator(segments, 30).get_page(request.GET.get("page"))
    return render(
        request,
        "members/hq/segments/list.html",
        {"page": page, "search": search, "show_archived": show_archived},
    )


def builder_catalogue(user: Any) -> dict[str, Any]:
    """What the builder script needs: fields, operators and the choices for each."""
    fields = []
    for spec in FIELDS.values():
        entry: dict[str, Any] = {
            "name": spec.name,
            "label": str(spec.label),
            "operators": [
                [op, str(NO_TIER if (spec.name, op) == ("tier", "none") else OPERATOR_LABELS[op])]
                for op in spec.operators
            ],
            "value": spec.value,
            "windowed": spec.windowed,
        }
        if spec.choices is not None:
            entry["choices"] = spec.choices()
        fields.append(entry)
    extra: dict[str, list[list[Any]]] = {
        "tags": [
            [tag.pk, f"{tag.group.name}：{tag.name}"]
            for tag in Tag.objects.filter(active=True).select_related("group")
        ],
        "home_store": [[store.pk, store.name] for store in _stores(user).order_by("code")],
        "tier": [[tier.pk, tier.name] for tier in Tier.objects.order_by("rank")],
    }
    for entry in fields:
        if entry["name"] in extra:
            entry["choices"] = extra[entry["name"]]
    return {
        "fields": fields,
        "text": {
            "and": _("all of (AND)"),
            "or": _("any of (OR)"),
            "not": _("not (NOT)"),
            "add_condition": _("+ condition"),
            "add_group": _("+ group"),
            "remove": _("Remove"),
            "days": _("in the last … days (empty: all time)"),
            "times": _("at least … times"),
            "from": _("from"),
            "to": _("to"),
            "members": _("members"),
            "counting": _("Counting…"),
            "error": _("Could not count"),
            "as_of": _("data as of"),
        },
    }


@hq_required
@require_http_methods(["GET", "POST"])
def segment_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    segment = _segment(request, pk) if pk is not None else None
    if segment is not None and segment.is_uploaded_list:
        messages.error(
            request, _("This list came from an uploaded file: upload a new file to change it.")
        )
        return redirect("hq:segment", pk=segment.pk)
    initial = {}
    if segment is None:
        initial["rules"] = json.dumps(
            {"op": "and", "rules": [{"field": "gender", "operator": "in", "value": ["f"]}]}
        )
    form = SegmentForm(request.POST or None, instance=segment, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = segment_save(form=form, actor=request.user)
        messages.success(
            request,
            _("Saved segment “%(name)s”: %(size)s members.")
            % {"name": saved.name, "size": f"{saved.size or 0:,}"},
        )
        return redirect("hq:segment", pk=saved.pk)
    return render(
        request,
        "members/hq/segments/builder.html",
        {
            "form": form,
            "segment": segment,
            "catalogue": builder_catalogue(request.user),
            "rule_error_path": form.rule_error.path if form.rule_error else "",
        },
    )


@hq_required
@require_POST
def segment_count(request: HttpRequest) -> JsonResponse:
    """The builder's live count: rules in, count and a sample out (JSON)."""
    if len(request.body) > 100_000:
        return JsonResponse(
            {"error": "too_large", "message": _("The rule tree is too large.")}, status=413
        )
    try:
        payload = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse(
            {"error": "bad_json", "message": _("The request is not valid JSON.")}, status=400
        )
    if not isinstance(payload, dict):
        return JsonResponse({"error": "bad_json", "message": _('Send {"rules": …}.')}, status=400)
    store_id: Any = payload.get("store")
    try:
        tree = check_rules(payload.get("rules"), user=request.user)
        store = None
        if store_id not in (None, ""):
            store = _stores(request.user).filter(pk=int(store_id)).first()
            if store is None:
                raise RuleError("", _("Unknown store, or not one of yours."))
        result = live_count(tree, user=request.user, store=store)
    except RuleError as exc:
        return JsonResponse(
            {"error": "invalid_rule", "path": exc.path, "message": str(exc.message)}, status=422
        )
    except (TypeError, ValueError):
        return JsonResponse(
            {"error": "invalid_rule", "path": "", "message": _("The store must be an id.")},
            status=422,
        )
    except SegmentTimeout as exc:
        return JsonResponse({"error": "timeout", "message": str(exc)}, status=504)
    return JsonResponse(
        {
            "count": result.count,
            "milliseconds": result.milliseconds,
            "source": result.source,
            "as_of": timezone.localtime(result.as_of).strftime("%H:%M:%S") if result.as_of else "",
            "sample": [
                {
                    "id": member.pk,
                    "name": member.name or "—",
                    "phone": member.masked_phone,
                    "store": member.home_store.name if member.home_store else "",
                    "url": f"/hq/members/{member.pk}/",
                }
                for member in result.sample
            ],
        }
    )


@hq_required
def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment(request, pk)
    if (file_format := wanted_format(request)) and wanted_table(request) == "sizes":
        return table_download(
            file_format=file_format,
            filename=f"segment-{segment.pk}-sizes",
            header=[_("Counted"), _("Members")],
            rows=([size.at, size.size] for size in segment.sizes.all()),
        )
    if file_format:
        return _segment_members_download(request, segment, file_format)
    members = segment_members(segment, user=request.user).select_related("home_store")
    page = Paginator(members.order_by("-id"), 20).get_page(request.GET.get("page"))
    return render(
        request,
        "members/hq/segments/detail.html",
        {
            "segment": segment,
            "page": page,
            "sizes": list(segment.sizes.all()[:30]),
            "rules_json": json.dumps(segment.rules, ensure_ascii=False, indent=1),
        },
    )


@hq_required
@require_POST
def segment_freeze_view(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment(request, pk)
    try:
        size = segment_freeze(segment=segment, actor=request.user)
    except MemberError as exc:
        messages.error(request, str(exc.message))
        return redirect("hq:segment", pk=segment.pk)
    messages.success(
        request, _("Froze %(size)s members into the static list.") % {"size": f"{size:,}"}
    )
    return redirect("hq:segment", pk=segment.pk)


@hq_required
@require_POST
def segment_archive_view(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment(request, pk)
    archived = request.POST.get("restore") != "1"
    segment_archive(segment=segment, actor=request.user, archived=archived)
    if archived:
        messages.success(request, _("Archived “%(name)s”.") % {"name": segment.name})
        return redirect("hq:segments")
    messages.success(request, _("Restored “%(name)s”.") % {"name": segment.name})
    return redirect("hq:segment", pk=segment.pk)


@hq_required
def segment_export(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _segment(request, pk)
    file_format = request.GET.get("format", "csv")
    if file_format not in {"csv", "xlsx"}:
        messages.error(request, _("Choose CSV or XLSX for the export."))
        return redirect("hq:segment", pk=pk)
    return _segment_members_download(request, segment, file_format)


def _segment_members_download(
    request: HttpRequest, segment: Segment, file_format: str
) -> HttpResponse:
    members = segment_members(segment, user=request.user).select_related("home_store", "guide")
    return member_download(
        request,
        members.order_by("pk"),
        file_format=file_format,
        filename=f"segment-{segment.pk}",
        too_many=_("The segment has %(count)s members; exports hold at most %(limit)s."),
        back=reverse("hq:segment", args=[segment.pk]),
    )


# --- Uploaded lists ---------------------------------------------------------------------------

UPLOAD_SAMPLE = 50  # rejected rows shown on the page; the CSV has them all


def _uploaded_segment(request: HttpRequest, pk: int) -> Segment:
    """A segment created from an uploaded list, for head office or whoever uploaded it (the
    report lists the file's values, which a store's staff need not see from HQ's file)."""
    segment = _segment(request, pk)
    user: Any = request.user
    if not (user.is_hq or segment.created_by_id == user.pk):
        raise Http404
    return segment


@hq_required
@require_http_methods(["GET", "POST"])
def segment_upload(request: HttpRequest) -> HttpResponse:
    """Upload a CSV or XLSX of phones / member ids / unionids / openids / card numbers and
    create a static segment frozen to exactly the members it names."""
    if request.method == "POST":
        form = SegmentUploadForm(request.POST, request.FILES, user=request.user)
    else:
        form = SegmentUploadForm(user=request.user)
    unmatched = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            segment, _match = segment_list_create(
                name=data["name"],
                description=data.get("description") or "",
                store=data.get("store"),
                column=data["holds"],
                rows=data["rows"],
                actor=request.user,
                file_name=data["file_name"],
                header=data["header"],
            )
        except ListNothingMatched as exc:
            form.add_error(None, str(exc.message))
            unmatched = exc.match
        except MemberError as exc:
            form.add_error(None, str(exc.message))
        else:
            messages.success(
                request,
                _("Created segment “%(name)s”: %(size)s members.")
                % {"name": segment.name, "size": f"{segment.size or 0:,}"},
            )
            return redirect("hq:segment-upload-result", pk=segment.pk)
    return render(
        request,
        "members/hq/segments/upload.html",
        {
            "form": form,
            "unmatched": unmatched,
            "unmatched_rows": unmatched.rejected[:UPLOAD_SAMPLE] if unmatched else [],
            "sample_size": UPLOAD_SAMPLE,
        },
    )


@hq_required
def segment_upload_result(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _uploaded_segment(request, pk)
    summary = segment_list_summary(segment=segment)
    if summary is None:
        raise Http404
    if file_format := wanted_format(request):
        # Every rejected row (the page shows the first UPLOAD_SAMPLE).
        return table_download(
            file_format=file_format,
            filename=f"segment-{segment.pk}-rejected",
            header=[_("Row"), _("Value"), _("Reason")],
            rows=(
                [row.row, row.value, row.reason] for row in segment_list_rejected(segment=segment)
            ),
        )
    return render(
        request,
        "members/hq/segments/upload_result.html",
        {
            "segment": segment,
            "summary": summary,
            "column_label": ListColumn(summary["column"]).label,
            "rejected": segment_list_rejected(segment=segment, limit=UPLOAD_SAMPLE),
            "rejected_total": summary["duplicates"] + summary["not_found"] + summary["invalid"],
            "sample_size": UPLOAD_SAMPLE,
        },
    )


@hq_required
def segment_upload_rejected(request: HttpRequest, pk: int) -> HttpResponse:
    """The rejected rows of an uploaded list as CSV: row number, value, reason."""
    segment = _uploaded_segment(request, pk)
    if segment_list_summary(segment=segment) is None:
        raise Http404
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_("Row"), _("Value"), _("Reason")])
    for row in segment_list_rejected(segment=segment):
        writer.writerow([row.row, spreadsheet_safe(row.value), row.reason])
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="segment-{segment.pk}-rejected.csv"'
    return response
