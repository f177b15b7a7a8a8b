from typing import Any

from django.utils.translation import gettext_lazy as _

from members import selectors
from scrm.core.board import Figure, step_figure


@step_figure(1)
def pool_size(user: Any) -> Figure:
    return Figure(_("members and prospects"), selectors.pool_size(user=user))


@step_figure(1)
def new_this_week(user: Any) -> Figure:
    return Figure(_("new this week"), selectors.pool_new_since(user=user))


@step_figure(4)
def points_outstanding(user: Any) -> Figure:
    return Figure(
        _("activity points outstanding"), selectors.points_liability(user=user)["activity"]
    )


@step_figure(4)
def tiered_members(user: Any) -> Figure:
    return Figure(_("members with a tier"), selectors.tiered_member_count(user=user))


@step_figure(3)
def tag_coverage(user: Any) -> Figure:
    coverage = selectors.tag_coverage(user=user)
    return Figure(_("members with a tag (%)"), coverage["percent"])


@step_figure(6)
def segment_count(user: Any) -> Figure:
    return Figure(_("segments in use"), selectors.segment_count(user=user))
