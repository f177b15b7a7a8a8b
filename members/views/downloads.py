"""Member tables as downloads: the member list, a segment's members. Both go through the
import-export `MemberExportResource` (its columns, phones always masked) and the shared
`table_download`, capped at EXPORT_LIMIT rows.
Other tables that list members (a guide's customers, a campaign's entrants, events)
keep their page's columns and use the same cap through `over_the_cap`."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from members.models import Member
from members.resources import MemberExportResource
from scrm.core.exports import table_download

EXPORT_LIMIT = 50_000


def over_the_cap(
    request: HttpRequest, total: int, *, too_many: Any, back: str
) -> HttpResponse | None:
    """None when `total` rows may be downloaded; else a redirect to `back` carrying the
    message `too_many % {"count", "limit"}`. For every table that lists members."""
    if total <= EXPORT_LIMIT:
        return None
    messages.error(request, too_many % {"count": f"{total:,}", "limit": f"{EXPORT_LIMIT:,}"})
    return redirect(back)


def member_download(
    request: HttpRequest,
    members: QuerySet[Member],
    *,
    file_format: str,
    filename: str,
    too_many: Any,
    back: str,
) -> HttpResponse:
    """`members` (already scoped and filtered) as CSV/XLSX, or back to `back` with the
    message `too_many % {"count", "limit"}` when more than EXPORT_LIMIT match."""
    if refused := over_the_cap(request, members.count(), too_many=too_many, back=back):
        return refused
    dataset = MemberExportResource(user=request.user).export(queryset=members)
    return table_download(
        file_format=file_format, filename=filename, header=dataset.headers, rows=dataset
    )
