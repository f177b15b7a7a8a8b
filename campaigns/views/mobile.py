"""/m/broadcasts/: the WeCom group messages a guide carries out — each broadcast's
content and the guide's customers it goes to — and their confirmation once sent in
WeCom. A guide sees only their own tasks; anyone else's is a 404."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from campaigns.models import GUIDE_POSTED, Delivery, DeliveryStatus, GatewayKind
from campaigns.selectors import guide_send_tasks
from campaigns.services.broadcasts import guide_task_confirm
from members.selectors import guides as guide_selectors
from members.services.errors import MemberError
from scrm.core.access import mobile_required

PAGE_SIZE = 20


def _context(request: HttpRequest) -> dict[str, Any]:
    return {
        "tab": "tasks",
        "tasks_due": guide_selectors.task_list(user=request.user).count(),
    }


@mobile_required
def send_task_list(request: HttpRequest) -> HttpResponse:
    show = "done" if request.GET.get("show") == "done" else "open"
    tasks = guide_send_tasks(request.user).filter(confirmed_at__isnull=(show == "open"))
    tasks = tasks.order_by("-confirmed_at" if show == "done" else "-created_at", "-pk")
    page = Paginator(tasks, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/mobile/send_tasks.html",
        {**_context(request), "page": page, "show": show},
    )


@mobile_required
def send_task_detail(request: HttpRequest, task_id: int) -> HttpResponse:
    task = guide_send_tasks(request.user).filter(pk=task_id).first()
    if task is None:
        raise Http404
    customers = (
        Delivery.objects.filter(
            broadcast_id=task.broadcast_id,
            channel=GatewayKind.WECOM,
            status=DeliveryStatus.SENT,
            member__guide_id=request.user.pk,
        )
        .select_related("member")
        .order_by("member__name", "member_id")
    )
    page = Paginator(customers, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/mobile/send_task.html",
        {
            **_context(request),
            "task": task,
            "page": page,
            "guide_posted": task.broadcast.channel in GUIDE_POSTED,
        },
    )


@mobile_required
@require_POST
def send_task_confirm(request: HttpRequest, task_id: int) -> HttpResponse:
    if not guide_send_tasks(request.user).filter(pk=task_id).exists():
        raise Http404
    try:
        guide_task_confirm(task_id=task_id, user=request.user)
    except MemberError as exc:
        if exc.status == 404:
            raise Http404 from exc
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Marked as sent. Thank you!"))
    return redirect("mobile:send-task", task_id=task_id)
