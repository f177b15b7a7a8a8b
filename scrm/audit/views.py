"""The HQ audit viewer, /hq/audit/: every recorded change and access, newest first."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from scrm.audit import selectors
from scrm.audit.forms import AuditFilterForm
from scrm.audit.models import AuditAction, AuditEvent
from scrm.audit.services import record_event
from scrm.audit.tables import table_label
from scrm.core.access import audit_viewer_required
from scrm.core.exports import table_download, wanted_format

PAGE_SIZE = 50
EXPORT_LIMIT = 50_000


def actor_text(event: AuditEvent) -> str:
    return event.actor_label or _("System")


def value_text(value: Any) -> str:
    if value is None:
        return "—"
    return str(value)


def changes_text(event: AuditEvent) -> str:
    parts = []
    for change in selectors.changes(event):
        if event.action == AuditAction.UPDATE:
            parts.append(f"{change.label}: {value_text(change.old)} → {value_text(change.new)}")
        elif event.action == AuditAction.DELETE:
            parts.append(f"{change.label}: {value_text(change.old)}")
        else:
            parts.append(f"{change.label}: {value_text(change.new)}")
    return "; ".join(parts)


def audit_header() -> list[str]:
    return [
        _("When"),
        pgettext("audit", "By"),
        _("Action"),
        _("Record"),
        pgettext("audit", "Row"),
        _("Member id"),
        _("Changes"),
        _("Origin"),
    ]


def audit_rows(events: Iterable[AuditEvent]) -> Iterator[list[Any]]:
    for event in events:
        yield [
            event.at,
            actor_text(event),
            event.get_action_display(),
            table_label(event.table) if event.table else "",
            event.row_id,
            event.member_id,
            changes_text(event),
            event.origin,
        ]


@audit_viewer_required
def audit_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    valid = form.is_valid() if form.is_bound else True
    events = (
        selectors.audit_events(
            filters=form.filters() if form.is_bound else selectors.AuditFilters()
        )
        if valid
        else AuditEvent.objects.none()
    )
    if valid and (file_format := wanted_format(request)):
        total = events.count()
        if total > EXPORT_LIMIT:
            messages.error(
                request,
                _("%(count)s events match; narrow the filters to at most %(limit)s to download.")
                % {"count": f"{total:,}", "limit": f"{EXPORT_LIMIT:,}"},
            )
            query = request.GET.copy()
            query.pop("format", None)
            return redirect(f"{request.path}?{query.urlencode()}")
        # Downloading the trail copies personal data out: that is an event of its own.
        record_event(
            AuditAction.EXPORT,
            actor=request.user,
            table="audit_auditevent",
            detail={"rows": total, "filters": {k: v for k, v in request.GET.items() if v}},
            origin=request.path,
        )
        return table_download(
            file_format=file_format,
            filename="audit-trail",
            header=audit_header(),
            rows=audit_rows(events.iterator(chunk_size=2000)),
        )
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "event": event,
            "actor": actor_text(event),
            "record": table_label(event.table) if event.table else "",
            "changes": selectors.changes(event),
        }
        for event in page
    ]
    return render(request, "audit/hq/audit_list.html", {"form": form, "page": page, "rows": rows})
