"""The member profile's behaviour trail (step 3 观用户): what the person did, where."""

from typing import Any

from django.utils.translation import gettext_lazy as _

from members.profile_sections import profile_section
from touchpoints import selectors


@profile_section(
    key="behaviour",
    title=_("Behaviour"),
    order=25,
    template="touchpoints/hq/profile/behaviour.html",
)
def behaviour(member: Any, user: Any) -> dict[str, Any]:
    return {"events": selectors.member_events(member, limit=30)}
