"""/hq/feedback/ and /hq/tickets/: what customers say, and the problems to solve."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from members.services.errors import MemberError
from scrm.core.access import hq_required
from scrm.core.params import positive_int
from scrm.org.models import Staff
from touchpoints import selectors
from touchpoints.models import Ticket, TicketStatus
from touchpoints.services.feedback import ticket_update
from touchpoints.views.health import date_range


@hq_required
def feedback(request: HttpRequest) -> HttpResponse:
    start, end = date_range(request)
    return render(
        request,
        "touchpoints/hq/feedback.html",
        {
            "start": start,
            "end": end,
            **selectors.feedback_summary(user=request.user, start=start, end=end),
        },
    )


@hq_required
def tickets(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    status = status if status in TicketStatus.values else ""
    page = Paginator(selectors.ticket_list(user=request.user, status=status), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "touchpoints/hq/tickets.html",
        {"page": page, "status": status, "statuses": TicketStatus.choices, "now": timezone.now()},
    )


@hq_required
@require_http_methods(["GET", "POST"])
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ticket: Ticket | None = (
        Ticket.objects.for_user(request.user)
        .select_related("member", "store", "category", "assignee", "response")
        .filter(pk=pk)
        .first()
    )
    if ticket is None:
        raise Http404
    staff: Any = Staff.objects.for_user(request.user).filter(is_active=True).exclude(role="guide")
    if request.method == "POST":
        assignee_id = request.POST.get("assignee", "")
        wanted = positive_int(assignee_id)
        assignee = staff.filter(pk=wanted).first() if wanted else None
        if assignee_id and assignee is None:
            messages.error(request, _("Choose someone you work with."))
        else:
            try:
                ticket_update(
                    ticket=ticket,
                    actor=request.user,
                    status=request.POST.get("status", ""),
                    assignee=assignee,
                    note=request.POST.get("note", ""),
                    resolution=request.POST.get("resolution", ""),
                )
            except MemberError as exc:
                messages.error(request, str(exc.message))
            else:
                messages.success(request, _("Ticket updated."))
                return redirect("hq:ticket", pk=ticket.pk)
    return render(
        request,
        "touchpoints/hq/ticket.html",
        {
            "ticket": ticket,
            "staff": staff.order_by("username"),
            "statuses": TicketStatus.choices,
            "notes": ticket.notes.select_related("author"),
            "overdue": ticket.status != TicketStatus.RESOLVED and ticket.due_at < timezone.now(),
        },
    )
