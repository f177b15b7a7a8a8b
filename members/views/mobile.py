from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from members import selectors
from scrm.core.access import mobile_required
from scrm.org.selectors import store_choices

PAGE_SIZE = 20


@mobile_required
def home(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:50]
    customers = selectors.member_list(user=request.user, search=search)
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "mobile/home.html",
        {
            "page": page,
            "search": search,
            "stores": store_choices(user=request.user),
        },
    )
