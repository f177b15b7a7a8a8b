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
from members.views.downloads import over_the_cap
from scrm.core.access import hq_required
from scrm.core.exports import table_download, wanted_format, wanted_table
from scrm.core.params import positive_int
from scrm.org.models import Staff
from touchpoints import selectors
from touchpoints.models import Ticket, TicketStatus
from touchpoints.services.feedback import ticket_update
from touchpoints.views.health import date_range


def _feedback_download(
    request: HttpRequest, file_format: str, start: Any, end: Any
) -> HttpResponse:
    """The page's three tables over the same dates and scope, every row (the page shows
    ten of each): "" problems in negative answers, "tickets" by category, "negative"."""
    user = request.user
    table = wanted_table(request)
    if table == "tickets":
        ranking = selectors.ticket_ranking(
            selectors.feedback_tickets(user=user, start=start, end=end)
        )
        return table_download(
            file_format=file_format,
            filename="feedback-ticket-categories",
            header=["#", _("Category"), _("Tickets")],
            rows=([n, row["category__name"], row["n"]] for n, row in enumerate(ranking, 1)),
        )
    responses = selectors.feedback_responses(user=user, start=start, end=end)
    if table == "negative":
        answers = selectors.negative_answers(responses)
        query = request.GET.copy()
        for key in ("format", "table"):
            query.pop(key, None)
        if refused := over_the_cap(
            request,
            answers.count(),
            too_many=_("%(count)s answers: narrow the dates to %(limit)s or fewer to export."),
            back=f"{request.path}?{query.urlencode()}",
        ):
            return refused
        return table_download(
            file_format=file_format,
            filename="feedback-negative-answers",
            header=[_("When"), _("Survey"), _("Score"), _("Member"), _("Store"), _("Comment")],
            rows=(
                [r.submitted_at, str(r.survey), r.score, str(r.member), r.store or "", r.comment]
                for r in answers.iterator(chunk_size=2000)
            ),
        )
    return table_download(
        file_format=file_format,
        filename="feedback-problems",
        header=["#", _("Category"), _("Answers")],
        rows=(
            [n, row["categories__name"], row["n"]]
            for n, row in enumerate(selectors.problem_ranking(responses), 1)
        ),
    )


@hq_required
def feedback(request: HttpRequest) -> HttpResponse:
    start, end = date_range(request)
    if file_format := wanted_format(request):
        return _feedback_download(request, file_format, start, end)
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
    tickets = selectors.ticket_list(user=request.user, status=status)
    if file_format := wanted_format(request):
        now = timezone.now()
        return table_download(
            file_format=file_format,
            filename="tickets",
            header=["#", _("Subject"), _("Category"), _("Member"), _("Store or department")]
            + [_("Assignee"), _("Status"), _("Due"), _("Overdue")],
            rows=(
                [
                    t.pk,
                    t.subject,
                    str(t.category or ""),
                    str(t.member),
                    str(t.store or t.department or _("Head office")),
                    str(t.assignee or ""),
                    t.get_status_display(),
                    t.due_at,
                    t.status != TicketStatus.RESOLVED and t.due_at < now,
                ]
                for t in tickets.iterator(chunk_size=2000)
            ),
        )
    page = Paginator(tickets, 50).get_page(request.GET.get("page"))
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
