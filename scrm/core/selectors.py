from django.db.models import QuerySet

from scrm.core.models import WorkerPing


def worker_ping_list(*, limit: int | None = 10) -> QuerySet[WorkerPing]:
    return WorkerPing.objects.select_related("requested_by").order_by("-requested_at")[:limit]
