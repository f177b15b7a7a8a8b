"""The board's figure for step 6. Steps 1, 3 and 4 read the daily aggregates and live in
analytics/board.py: counted here they would scan the member, tag and points tables on
every visit to /hq/."""

from typing import Any

from django.utils.translation import gettext_lazy as _

from members import selectors
from scrm.core.board import Figure, step_figure


@step_figure(6)
def segment_count(user: Any) -> Figure:
    return Figure(_("segments in use"), selectors.segment_count(user=user))
