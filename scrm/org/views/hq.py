from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from scrm.core.access import hq_required
from scrm.org import selectors
from scrm.org.scoping import Role

PAGE_SIZE = 25


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@hq_required
def store_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:100]
    region_id = _int_or_none(request.GET.get("region"))
    stores = selectors.store_list(user=request.user, search=search, region_id=region_id)
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
