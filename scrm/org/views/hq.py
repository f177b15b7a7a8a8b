from collections.abc import Iterable, Iterator
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from scrm.core.access import hq_required
from scrm.core.exports import table_download, wanted_format
from scrm.org import selectors
from scrm.org.models import Staff, Store
from scrm.org.scoping import Role

PAGE_SIZE = 25


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def store_header() -> list[str]:
    return [_("Store code"), _("Name"), _("City"), _("Region"), _("Guides"), _("Status")]


def store_rows(stores: Iterable[Store]) -> Iterator[list[Any]]:
    """The store table as the page shows it (`stores` from `selectors.store_list`)."""
    for store in stores:
        status = _("open") if store.is_active else _("closed")
        yield [store.code, store.name, store.city, store.region.name, store.guide_count, status]  # type: ignore[attr-defined]


def staff_header() -> list[str]:
    return [_("Username"), _("Name"), _("Role"), _("Region"), _("Stores"), _("Status")]


def staff_rows(staff: Iterable[Staff]) -> Iterator[list[Any]]:
    """The staff table as the page shows it (`staff` from `selectors.staff_list`)."""
    for person in staff:
        yield [
            person.username,
            str(person),
            person.get_role_display() or "",
            person.region.name if person.region else "",
            "、".join(store.name for store in person.stores.all()),
            pgettext("staff", "active") if person.is_active else _("disabled"),
        ]


@hq_required
def store_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:100]
    region_id = _int_or_none(request.GET.get("region"))
    stores = selectors.store_list(user=request.user, search=search, region_id=region_id)
    if file_format := wanted_format(request):
        return table_download(
            file_format=file_format,
            filename="stores",
            header=store_header(),
            rows=store_rows(stores),
        )
    page = Paginator(stores, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "org/hq/store_list.html",
        {
            "page": page,
            "search": search,
            "region_id": region_id,
            "regions": selectors.region_choices(user=request.user),
        },
    )


@hq_required
def staff_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:100]
    role = request.GET.get("role", "")
    if role not in Role.values:
        role = ""
    staff = selectors.staff_list(user=request.user, search=search, role=role)
    if file_format := wanted_format(request):
        return table_download(
            file_format=file_format,
            filename="staff",
            header=staff_header(),
            rows=staff_rows(staff),
        )
    page = Paginator(staff, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "org/hq/staff_list.html",
        {
            "page": page,
            "search": search,
            "role": role,
            "roles": Role.choices,
        },
    )
