"""/m/: a guide's phone workspace: my customers, a customer's card (tags, notes,
timeline), follow-up tasks and my performance. Every lookup goes through the user's
scope, so another guide's customer or task is a 404, never shown."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from members import selectors
from members.forms.guides import CustomerFilterForm, NoteForm, TaskDoneForm
from members.models import Member, Tag, TaskStatus, can_see_full_phone
from members.selectors import guides as guide_selectors
from members.services import phones as phone_services
from members.services.errors import MemberError
from members.services.guides import note_add, task_complete
from members.services.tags import member_tag_add, member_tag_remove
from members.services.tiers import tier_card
from scrm.core.access import mobile_required
from scrm.core.params import positive_int
from scrm.org.scoping import Role
from scrm.org.selectors import store_choices

PAGE_SIZE = 20


def _customer(request: HttpRequest, member_id: int) -> Member:
    member = guide_selectors.customer_for_user(user=request.user, member_id=member_id)
    if member is None:
        raise Http404
    return member


def _card_url(member: Member, anchor: str = "") -> str:
    url = reverse("mobile:customer", args=[member.pk])
    return f"{url}#{anchor}" if anchor else url


@mobile_required
def home(request: HttpRequest) -> HttpResponse:
    form = CustomerFilterForm(request.GET or None, user=request.user)
    filters = form.filters() if request.GET else guide_selectors.CustomerFilters()
    customers = guide_selectors.my_customers(user=request.user, filters=filters)
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "mobile/home.html",
        {
            "page": page,
            "form": form,
            "search": filters.search,
            "filtered": form.active_count if request.GET else 0,
            "stores": store_choices(user=request.user),
            "tasks_due": guide_selectors.task_list(user=request.user).count(),
            "tab": "customers",
        },
    )


@mobile_required
def customer(request: HttpRequest, member_id: int) -> HttpResponse:
    return _card_page(request, _customer(request, member_id), full_phone="")


@mobile_required
@require_POST
def customer_phone_reveal(request: HttpRequest, member_id: int) -> HttpResponse:
    """The card with the full number (and tap-to-call), for this answer only: needs
    view_full_phone and the guide's own customer, and is recorded in the audit log."""
    member = _customer(request, member_id)
    phone = phone_services.member_unmask_phone(
        user=request.user, member=member, origin=request.path
    )
    response = _card_page(request, member, full_phone=phone)
    response["Cache-Control"] = "no-store"  # the full number stays out of caches
    return response


def _card_page(request: HttpRequest, member: Member, *, full_phone: str) -> HttpResponse:
    from members.services.points import points_balances

    held = selectors.member_tags(member)
    held_ids = {row.tag_id for row in held}
    return render(
        request,
        "mobile/customer.html",
        {
            "member": member,
            "phone": full_phone or member.masked_phone,
            "full_phone": full_phone,
            "can_reveal": can_see_full_phone(request.user) and member.has_phone and not full_phone,
            "card": tier_card(member_id=member.pk),
            "balances": points_balances(member_id=member.pk),
            "orders": selectors.member_orders(member, limit=5),
            "tags": held,
            "addable": [t for t in guide_selectors.tag_choices() if t.pk not in held_ids],
            "notes": guide_selectors.member_notes(member, limit=10),
            "open_tasks": guide_selectors.member_open_tasks(member),
            "timeline": guide_selectors.member_timeline(member, limit=30),
            "note_form": NoteForm(),
            "tab": "customers",
        },
    )


@mobile_required
@require_POST
def customer_tag_add(request: HttpRequest, member_id: int) -> HttpResponse:
    member = _customer(request, member_id)
    tag_id = positive_int(request.POST.get("tag"))
    tag = Tag.objects.filter(pk=tag_id, active=True).first() if tag_id else None
    if tag is None:
        messages.error(request, _("Choose an active tag."))
        return redirect(_card_url(member, "tags"))
    try:
        added = member_tag_add(member=member, tag=tag, actor=request.user)
    except MemberError as exc:
        messages.error(request, str(exc.message))
    else:
        if added:
            messages.success(request, _("Tagged with “%(tag)s”.") % {"tag": tag.name})
        else:
            messages.info(request, _("The member already has “%(tag)s”.") % {"tag": tag.name})
    return redirect(_card_url(member, "tags"))


@mobile_required
@require_POST
def customer_tag_remove(request: HttpRequest, member_id: int, tag_id: int) -> HttpResponse:
    member = _customer(request, member_id)
    tag = Tag.objects.filter(pk=tag_id).first()
    if tag is None or not member_tag_remove(member=member, tag=tag, actor=request.user):
        raise Http404
    messages.success(request, _("Removed “%(tag)s”.") % {"tag": tag.name})
    return redirect(_card_url(member, "tags"))


@mobile_required
@require_POST
def customer_note_add(request: HttpRequest, member_id: int) -> HttpResponse:
    member = _customer(request, member_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
        return redirect(_card_url(member, "notes"))
    try:
        note_add(
            member=member,
            author=request.user,  # type: ignore[arg-type]
            body=form.cleaned_data["body"],
            kind=form.cleaned_data["kind"],
        )
    except MemberError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Note saved."))
    return redirect(_card_url(member, "notes"))


@mobile_required
def tasks(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "due")
    if show not in ("due", "upcoming", "done"):
        show = "due"
    rows = guide_selectors.task_list(user=request.user, scope=show)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "mobile/tasks.html",
        {
            "page": page,
            "show": show,
            "tasks_due": guide_selectors.task_list(user=request.user).count(),
            "tab": "tasks",
        },
    )


@mobile_required
@require_http_methods(["GET", "POST"])
def task_done(request: HttpRequest, task_id: int) -> HttpResponse:
    task = (
        guide_selectors.task_list(user=request.user, scope="all")
        .select_related("member")
        .filter(pk=task_id)
        .first()
    )
    if task is None:
        raise Http404
    form = TaskDoneForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            task_complete(
                task_id=task.pk,
                user=request.user,  # type: ignore[arg-type]
                outcome=form.cleaned_data["outcome"],
                note=form.cleaned_data["note"],
            )
        except MemberError as exc:
            messages.error(request, str(exc.message))
            if exc.status == 404:
                raise Http404 from exc
        else:
            messages.success(request, _("Task done. Well done!"))
            return redirect("mobile:tasks")
    return render(
        request,
        "mobile/task_done.html",
        {
            "task": task,
            "form": form,
            "can_complete": task.status == TaskStatus.OPEN and task.guide_id == request.user.pk,
            "tab": "tasks",
        },
    )


@mobile_required
def performance(request: HttpRequest) -> HttpResponse:
    user = request.user
    if getattr(user, "role", None) == Role.GUIDE:
        (mine,) = guide_selectors.guide_figures(guides=[user])  # type: ignore[list-item]
        board = None
    else:
        mine = None
        board = guide_selectors.guide_leaderboard(user=user)
    return render(
        request,
        "mobile/performance.html",
        {
            "mine": mine,
            "board": board,
            "tasks_due": guide_selectors.task_list(user=user).count(),
            "tab": "me",
        },
    )
