"""/hq/guides/: store and region managers (and head office) look after guides: the
leaderboard, each guide's customers and tasks, transfers (在职继承), a departed guide's
handover (离职继承), the store pool's round-robin, and HQ follow-up tasks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from html import unescape
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import strip_tags
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from members.forms.guides import DepartureForm, HqTaskForm, TransferForm
from members.models import FollowUpTask, Member, Segment, TaskKind, TaskStatus
from members.selectors import guides as guide_selectors
from members.services.errors import MemberError
from members.services.guides import (
    customers_to_pool,
    customers_transfer,
    describe_result,
    guide_depart,
    pool_distribute,
    tasks_create_for_members,
)
from members.services.segments import segment_members
from members.views.downloads import over_the_cap
from scrm.core.access import head_office_required, hq_required
from scrm.core.exports import table_download, wanted_format, wanted_table
from scrm.core.params import positive_int
from scrm.org.models import Staff, Store

PAGE_SIZE = 50


def task_text(task: FollowUpTask) -> str:
    """A task's title and facts in words, as the task tables show them."""
    html = render_to_string("mobile/_task_title.html", {"task": task})
    return unescape(strip_tags(html)).strip()


def task_rows(tasks: Iterable[FollowUpTask]) -> Iterator[list[Any]]:
    for task in tasks:
        status = task.get_status_display()
        if task.outcome:
            status = f"{status} · {task.get_outcome_display()}"
        yield [task.due_on, task_text(task), str(task.member), str(task.guide), status]


def _guide(request: HttpRequest, guide_id: int) -> Staff:
    guide = guide_selectors.guide_for_manager(user=request.user, guide_id=guide_id)
    if guide is None:
        raise Http404
    return guide


@hq_required
def guide_list(request: HttpRequest) -> HttpResponse:
    store_id = positive_int(request.GET.get("store"))
    stores: QuerySet[Store] = Store.objects.for_user(request.user).order_by("code")
    if store_id and not stores.filter(pk=store_id).exists():
        raise Http404
    if file_format := wanted_format(request):
        if wanted_table(request) == "pools":
            return table_download(
                file_format=file_format,
                filename="store-pools",
                header=[_("Store"), _("Without a guide"), _("Active guides")],
                rows=(
                    [pool["store"].name, pool["unassigned"], pool["guides"]]
                    for pool in guide_selectors.store_pools(user=request.user)
                ),
            )
        board = guide_selectors.guide_leaderboard(user=request.user, store_id=store_id)
        return table_download(
            file_format=file_format,
            filename="guide-leaderboard",
            header=[
                *("#", _("Guide"), _("Store"), _("Attributed sales"), _("Orders")),
                *(_("Customers"), _("New this month"), _("Tasks done"), _("Tasks due")),
            ],
            rows=(
                [
                    n,
                    str(row.guide) + ("" if row.guide.is_active else f" ({_('Left')})"),
                    ", ".join(store.name for store in row.guide.stores.all()),
                    row.sales,
                    row.orders,
                    row.customers,
                    row.new_this_month,
                    row.tasks_done,
                    row.tasks_due,
                ]
                for n, row in enumerate(board, start=1)
            ),
        )
    return render(
        request,
        "members/hq/guides/list.html",
        {
            "board": guide_selectors.guide_leaderboard(user=request.user, store_id=store_id),
            "pools": guide_selectors.store_pools(user=request.user),
            "stores": stores,
            "store_id": store_id,
        },
    )


@hq_required
def guide_detail(request: HttpRequest, guide_id: int) -> HttpResponse:
    guide = _guide(request, guide_id)
    (figures,) = guide_selectors.guide_figures(guides=[guide])
    customers = (
        Member.objects.for_user(request.user)
        .filter(guide=guide)
        .select_related("home_store")
        .order_by("name", "pk")
    )
    open_tasks = guide_selectors.hq_task_list(
        user=request.user, status=TaskStatus.OPEN, guide_id=guide.pk
    )
    if file_format := wanted_format(request):
        if wanted_table(request) == "tasks":
            return table_download(
                file_format=file_format,
                filename=f"guide-{guide.pk}-open-tasks",
                header=[_("Due"), _("Task"), _("Customer"), _("Overdue")],
                rows=(
                    [task.due_on, task_text(task), str(task.member), task.is_overdue]
                    for task in open_tasks
                ),
            )
        if refused := over_the_cap(
            request,
            customers.count(),
            too_many=_(
                "%(count)s customers: downloads hold at most %(limit)s; "
                "transfer some to a colleague or download the member list by store."
            ),
            back=reverse("hq:guide", args=[guide.pk]),
        ):
            return refused
        return table_download(
            file_format=file_format,
            filename=f"guide-{guide.pk}-customers",
            header=[_("Name"), _("Phone"), _("Stage"), _("Store")],
            rows=(
                [m.name, m.masked_phone, m.get_lifecycle_stage_display(), m.home_store or ""]
                for m in customers.iterator(chunk_size=2000)
            ),
        )
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "members/hq/guides/detail.html",
        {
            "guide": guide,
            "figures": figures,
            "page": page,
            "transfer_form": TransferForm(
                guides=guide_selectors.colleagues(guide=guide, user=request.user)
            ),
            "tasks": open_tasks[:50],
        },
    )


@hq_required
@require_POST
def guide_transfer(request: HttpRequest, guide_id: int) -> HttpResponse:
    """在职继承: the chosen customers (or all of them) go to a colleague."""
    guide = _guide(request, guide_id)
    form = TransferForm(
        request.POST, guides=guide_selectors.colleagues(guide=guide, user=request.user)
    )
    back = reverse("hq:guide", args=[guide.pk])
    if not form.is_valid():
        messages.error(request, _("Choose a guide of the same store to take over."))
        return redirect(back)
    if request.POST.get("all") == "1":
        ids = list(
            Member.objects.for_user(request.user).filter(guide=guide).values_list("pk", flat=True)
        )
    else:
        ids = [pk for v in request.POST.getlist("members") if (pk := positive_int(v))]
    try:
        result = customers_transfer(
            member_ids=ids,
            to_guide=form.cleaned_data["to_guide"],
            from_guide=guide,
            actor=request.user,
            note=form.cleaned_data["note"],
        )
    except MemberError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Transferred: %(what)s.") % {"what": describe_result(result)})
    return redirect(back)


@hq_required
@require_http_methods(["GET", "POST"])
def guide_departure(request: HttpRequest, guide_id: int) -> HttpResponse:
    """离职继承: a leaving guide's customers are spread over colleagues or sent back to the
    store pool, and the guide's account is switched off."""
    guide = _guide(request, guide_id)
    colleagues = guide_selectors.colleagues(guide=guide, user=request.user)
    form = DepartureForm(request.POST or None, guides=colleagues)
    if request.method == "POST" and form.is_valid():
        try:
            result = guide_depart(
                guide=guide,
                actor=request.user,
                to_guides=list(form.cleaned_data["to_guides"]),
                note=form.cleaned_data["note"],
            )
        except MemberError as exc:
            messages.error(request, str(exc.message))
        else:
            messages.success(
                request,
                _("%(guide)s has left; %(what)s.")
                % {"guide": guide, "what": describe_result(result)},
            )
            return redirect("hq:guides")
    return render(
        request,
        "members/hq/guides/departure.html",
        {
            "guide": guide,
            "form": form,
            "customers": Member.objects.for_user(request.user).filter(guide=guide).count(),
            "open_tasks": guide_selectors.hq_task_list(
                user=request.user, status=TaskStatus.OPEN, guide_id=guide.pk
            ).count(),
        },
    )


@hq_required
@require_POST
def store_pool_distribute(request: HttpRequest, store_id: int) -> HttpResponse:
    store: Store | None = Store.objects.for_user(request.user).filter(pk=store_id).first()
    if store is None:
        raise Http404
    try:
        counts = pool_distribute(store=store, actor=request.user)
    except MemberError as exc:
        messages.error(request, str(exc.message))
    else:
        if counts:
            messages.success(
                request,
                _("Handed out: %(what)s.")
                % {"what": ", ".join(f"{name} {n}" for name, n in counts.items())},
            )
        else:
            messages.info(request, _("%(store)s has no customers waiting.") % {"store": store})
    return redirect("hq:guides")


@hq_required
@require_POST
def member_reassign(request: HttpRequest, member_id: int) -> HttpResponse:
    """From the member's profile: give them to another guide of their store, or back to
    the pool."""
    member = Member.objects.for_user(request.user).filter(pk=member_id).first()
    if member is None:
        raise Http404
    back = reverse("hq:member-profile", args=[member.pk]) + "#section-guide"
    target = request.POST.get("to_guide", "")
    try:
        if target == "pool":
            customers_to_pool(
                member_ids=[member.pk], actor=request.user, note=request.POST.get("note", "")
            )
            messages.success(request, _("Sent back to the store pool."))
        else:
            guides = guide_selectors.store_guides(
                user=request.user, store_id=member.home_store_id or 0
            )
            guide = guides.filter(pk=positive_int(target) or 0).first()
            if guide is None:
                messages.error(request, _("Choose a guide of the customer's store."))
                return redirect(back)
            result = customers_transfer(
                member_ids=[member.pk],
                to_guide=guide,
                actor=request.user,
                note=request.POST.get("note", ""),
            )
            messages.success(request, describe_result(result))
    except MemberError as exc:
        messages.error(request, str(exc.message))
    return redirect(back)


@hq_required
def task_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", TaskStatus.OPEN)
    status = status if status in TaskStatus.values else ""
    kind = request.GET.get("kind", "")
    kind = kind if kind in TaskKind.values else ""
    tasks = guide_selectors.hq_task_list(user=request.user, status=status, kind=kind)
    if file_format := wanted_format(request):
        return table_download(
            file_format=file_format,
            filename="tasks",
            header=[_("Due"), _("Task"), _("Customer"), _("Guide"), _("Status")],
            rows=task_rows(tasks),
        )
    page = Paginator(tasks, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "members/hq/guides/tasks.html",
        {
            "page": page,
            "status": status,
            "kind": kind,
            "statuses": TaskStatus.choices,
            "kinds": TaskKind.choices,
        },
    )


head_office_only = head_office_required(
    gettext_lazy("Only head-office staff assign follow-up tasks to every guide.")
)


@head_office_only
@require_http_methods(["GET", "POST"])
def task_new(request: HttpRequest) -> HttpResponse:
    form = HqTaskForm(request.POST or None)
    form.fields["segment"].queryset = Segment.objects.for_user(request.user).filter(  # type: ignore[attr-defined]
        archived=False
    )
    if request.method == "POST" and form.is_valid():
        segment = form.cleaned_data["segment"]
        ids = list(segment_members(segment, user=request.user).values_list("pk", flat=True))
        try:
            result = tasks_create_for_members(
                member_ids=ids,
                title=form.cleaned_data["title"],
                detail=form.cleaned_data["detail"],
                due_on=form.cleaned_data["due_on"],
                actor=request.user,
            )
        except MemberError as exc:
            messages.error(request, str(exc.message))
        else:
            messages.success(
                request,
                _("%(created)d tasks sent to guides; %(skipped)d customers have no guide.")
                % {"created": result.created, "skipped": result.without_guide},
            )
            return redirect("hq:tasks")
    return render(request, "members/hq/guides/task_new.html", {"form": form})
