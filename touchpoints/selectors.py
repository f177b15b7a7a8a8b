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


def member_events(member: Any, *, limit: int = 30) -> list[Any]:
    """A person's latest behaviour events, newest first, with where they happened."""
    from touchpoints.models import BehaviourEvent

    return list(
        BehaviourEvent.objects.filter(member=member)
        .select_related("touchpoint")
        .order_by("-occurred_at", "-pk")[:limit]
    )
