from __future__ import annotations

import csv
import io
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from scrm.core.access import head_office_required, hq_required
from scrm.core.exports import table_download, wanted_format
from scrm.core.tabular import ImportFileError
from touchpoints import selectors
from touchpoints.forms import ImportUploadForm, MappingForm
from touchpoints.imports import mappings
from touchpoints.imports.jobs import import_job_cancel, import_job_create
from touchpoints.services import mapping_update

# Merging people and running imports touch many records: head-office roles only.
head_office_only = head_office_required(gettext_lazy("Imports are run by head-office staff."))


@head_office_only
def imports(request: HttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = import_job_create(
                upload=form.cleaned_data["file"],
                kind=form.cleaned_data["kind"],
                source=form.cleaned_data["source"],
                actor=request.user,
            )
        except ImportFileError as exc:
            form.add_error("file", exc.message)
        else:
            messages.success(request, _("Uploaded. The import runs in the background."))
            return redirect("hq:import-detail", job_id=job.pk)
    jobs = selectors.import_job_list(user=request.user)
    if request.method == "GET" and (file_format := wanted_format(request)):
        return table_download(
            file_format=file_format,
            filename="imports",
            header=["#", _("File"), _("Data"), _("Source"), _("Status"), _("Progress")]
            + [_("Rejected"), _("Uploaded"), _("By")],
            rows=(
                [
                    job.pk,
                    job.original_name,
                    job.get_kind_display(),
                    job.get_source_display(),
                    job.get_status_display(),
                    f"{job.percent}%",
                    job.rejected,
                    job.created_at,
                    str(job.created_by) if job.created_by else "",
                ]
                for job in jobs
            ),
        )
    page = Paginator(jobs, 20).get_page(request.GET.get("page"))
    return render(
        request,
        "touchpoints/hq/imports.html",
        {"form": form, "page": page},
        status=400 if form.errors else 200,
    )


def _job(request: HttpRequest, job_id: int) -> Any:
    job = selectors.import_job_list(user=request.user).filter(pk=job_id).first()
    if job is None:
        raise Http404
    return job


@head_office_only
def import_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    context = {
        "job": job,
        "events": selectors.import_events(job),
        "errors": selectors.import_errors(job)[:50],
    }
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "touchpoints/hq/_import_progress.html", context)
    return render(request, "touchpoints/hq/import_detail.html", context)


@head_office_only
@require_POST
def import_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = import_job_cancel(job=_job(request, job_id), actor=request.user)
    messages.info(
        request, _("Cancel requested.") if not job.is_finished else _("The import has stopped.")
    )
    return redirect("hq:import-detail", job_id=job.pk)


@head_office_only
def import_error_report(request: HttpRequest, job_id: int, file_format: str) -> HttpResponse:
    """Every rejected row of a job (the page shows the first 50)."""
    job = _job(request, job_id)
    rows = selectors.import_errors(job).values_list("row_number", "column", "value", "reason")
    return table_download(
        file_format="xlsx" if file_format == "xlsx" else "csv",
        filename=f"import-{job.pk}-errors",
        header=[_("Row"), _("Column"), _("Value"), _("Reason")],
        rows=rows.iterator(chunk_size=5000),
        sheet_title=_("Errors"),
    )


@hq_required
def import_template(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in ("members", "orders"):
        raise Http404
    text = io.StringIO()
    csv.writer(text).writerow(mappings.template_headers(kind))
    response = HttpResponse("\ufeff" + text.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="scrm-{kind}-template.csv"'
    return response


@head_office_only
def mapping_list(request: HttpRequest) -> HttpResponse:
    mappings = selectors.mapping_list()
    if file_format := wanted_format(request):
        return table_download(
            file_format=file_format,
            filename="import-mappings",
            header=[_("Source"), _("Data"), _("Fields"), _("Updated"), _("By")],
            rows=(
                [
                    m.get_source_display(),
                    m.get_kind_display(),
                    len(m.columns),
                    m.updated_at,
                    str(m.updated_by or ""),
                ]
                for m in mappings
            ),
        )
    return render(request, "touchpoints/hq/mappings.html", {"mappings": mappings})


@head_office_only
def mapping_edit(request: HttpRequest, mapping_id: int) -> HttpResponse:
    mapping = selectors.mapping_list().filter(pk=mapping_id).first()
    if mapping is None:
        raise Http404
    form = MappingForm(request.POST or None, mapping=mapping)
    if request.method == "POST" and form.is_valid():
        mapping_update(mapping=mapping, columns=form.columns(), actor=request.user)
        messages.success(request, _("Mapping saved."))
        return redirect("hq:import-mappings")
    return render(request, "touchpoints/hq/mapping_edit.html", {"form": form, "mapping": mapping})
