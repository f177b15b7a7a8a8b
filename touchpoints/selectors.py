from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from touchpoints.models import ImportEvent, ImportJob, ImportMapping, ImportRowError


def import_job_list(*, user: Any) -> QuerySet[ImportJob]:
    return (
        ImportJob.objects.for_user(user).select_related("created_by").order_by("-created_at", "-pk")
    )


def import_events(job: ImportJob) -> QuerySet[ImportEvent]:
    return ImportEvent.objects.filter(job=job).order_by("at", "pk")


def import_errors(job: ImportJob) -> QuerySet[ImportRowError]:
    return ImportRowError.objects.filter(job=job).order_by("row_number", "pk")


def mapping_list() -> QuerySet[ImportMapping]:
    return ImportMapping.objects.select_related("updated_by").order_by("kind", "source")


def member_events(member: Any, *, limit: int | None = 30) -> list[Any]:
    """A person's latest behaviour events, newest first, with where they happened."""
    from touchpoints.models import BehaviourEvent

    return list(
        BehaviourEvent.objects.filter(member=member)
        .select_related("touchpoint")
        .order_by("-occurred_at", "-pk")[:limit]
    )


def feedback_responses(*, user: Any, start: Any, end: Any) -> QuerySet[Any]:
    from touchpoints.models import SurveyResponse

    return SurveyResponse.objects.for_user(user).filter(
        submitted_at__date__gte=start, submitted_at__date__lte=end
    )


def feedback_tickets(*, user: Any, start: Any, end: Any) -> QuerySet[Any]:
    from touchpoints.models import Ticket

    return Ticket.objects.for_user(user).filter(
        created_at__date__gte=start, created_at__date__lte=end
    )


def problem_ranking(responses: QuerySet[Any]) -> QuerySet[Any]:
    """Categories named in negative answers, most often first."""
    from django.db.models import Count

    return (
        responses.filter(negative=True, categories__isnull=False)
        .values("categories__name")
        .annotate(n=Count("pk"))
        .order_by("-n", "categories__name")
    )


def ticket_ranking(tickets: QuerySet[Any]) -> QuerySet[Any]:
    from django.db.models import Count

    return (
        tickets.filter(category__isnull=False)
        .values("category__name")
        .annotate(n=Count("pk"))
        .order_by("-n", "category__name")
    )


def negative_answers(responses: QuerySet[Any]) -> QuerySet[Any]:
    return (
        responses.filter(negative=True)
        .select_related("member", "store", "survey")
        .order_by("-submitted_at", "-pk")
    )


def feedback_summary(*, user: Any, start: Any, end: Any) -> dict[str, Any]:
    """NPS and satisfaction over the period, and the problems named most often in
    negative answers and tickets (what to fix first)."""
    from django.db.models import Avg, Count, Q

    from touchpoints.models import SurveyKind

    responses = feedback_responses(user=user, start=start, end=end)
    nps = responses.filter(survey__kind=SurveyKind.NPS).aggregate(
        n=Count("pk"),
        promoters=Count("pk", filter=Q(score__gte=9)),
        detractors=Count("pk", filter=Q(score__lte=6)),
    )
    nps["score"] = (
        round((nps["promoters"] - nps["detractors"]) * 100 / nps["n"]) if nps["n"] else None
    )
    satisfaction = responses.filter(survey__kind=SurveyKind.SATISFACTION).aggregate(
        n=Count("pk"), average=Avg("score")
    )
    tickets = feedback_tickets(user=user, start=start, end=end)
    return {
        "nps": nps,
        "satisfaction": satisfaction,
        "ranking": list(problem_ranking(responses)[:10]),
        "ticket_ranking": list(ticket_ranking(tickets)[:10]),
        "negative": list(negative_answers(responses)[:10]),
        "tickets_open": tickets.exclude(status="resolved").count(),
    }


def ticket_list(*, user: Any, status: str = "") -> QuerySet[Any]:
    from touchpoints.models import Ticket

    tickets: QuerySet[Any] = Ticket.objects.for_user(user).select_related(
        "member", "store", "category", "assignee"
    )
    if status:
        tickets = tickets.filter(status=status)
    return tickets.order_by("status", "due_at", "pk")
