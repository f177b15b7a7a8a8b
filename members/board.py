"""The board's figure for step 6. Steps 1, 3 and 4 read the daily aggregates and live in
analytics/board.py: counted here they would scan the member, tag and points tables on
every visit to /hq/."""

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from members import selectors
from scrm.core.board import Figure, step_figure, trend_start, weekly_trend


@step_figure(6)
def segment_count(user: Any) -> Figure:
    from members.models import Segment

    # Segments in use at the end of each of the last weeks (by when they were made).
    made: Any = (
        Segment.objects.for_user(user).filter(archived=False).values_list("created_at", flat=True)
    )
    start = trend_start()
    before = sum(1 for when in made if when < start)
    weekly = weekly_trend((when, 1) for when in made)
    trend = [before + sum(weekly[: i + 1]) for i in range(len(weekly))]
    return Figure(
        _("segments in use"),
        selectors.segment_count(user=user),
        url=reverse("hq:segments"),
        trend=trend,
        trend_period=_("a week"),
    )
