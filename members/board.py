from typing import Any

from django.utils.translation import gettext_lazy as _

from members.selectors import pool_figures
from scrm.core.board import Figure, step_figure


@step_figure(1)
def pool_size(user: Any) -> Figure:
    return Figure(_("members and prospects"), pool_figures(user=user)["pool"])


@step_figure(1)
def new_this_week(user: Any) -> Figure:
    return Figure(_("new this week"), pool_figures(user=user)["new_this_week"])
