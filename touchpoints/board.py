from datetime import timedelta
from typing import Any

from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scrm.core.board import Figure, step_figure
from touchpoints.models import ImportJob


def _this_week(user: Any) -> QuerySet[ImportJob]:
    return ImportJob.objects.for_user(user).filter(
        created_at__gte=timezone.now() - timedelta(days=7)
    )


@step_figure(2)
def imports_this_week(user: Any) -> Figure:
    return Figure(_("imports this week"), _this_week(user).count())


@step_figure(2)
def created_this_week(user: Any) -> Figure:
    added = _this_week(user).aggregate(n=Sum("created"))["n"]
    return Figure(_("people added by imports"), added or 0)
