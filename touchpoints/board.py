from datetime import timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scrm.core.board import Figure, step_figure
from touchpoints.models import ImportJob


@step_figure(2)
def imports_this_week(user: Any) -> Figure:
    week = ImportJob.objects.for_user(user).filter(
        created_at__gte=timezone.now() - timedelta(days=7)
    )
    return Figure(_("imports this week"), week.count())


@step_figure(2)
def created_this_week(user: Any) -> Figure:
    week = ImportJob.objects.for_user(user).filter(
        created_at__gte=timezone.now() - timedelta(days=7)
    )
    return Figure(_("people added by imports"), week.aggregate(n=Sum("created"))["n"] or 0)
