"""The member profile's behaviour trail (step 3 观用户): what the person did, where."""

from typing import Any

from django.utils.translation import gettext_lazy as _

from members.profile_sections import profile_section, profile_table
from touchpoints import selectors


@profile_section(
    key="behaviour",
    title=_("Behaviour"),
    order=25,
    template="touchpoints/hq/profile/behaviour.html",
)
def behaviour(member: Any, user: Any) -> dict[str, Any]:
    return {"events": selectors.member_events(member, limit=30)}


@profile_table(key="behaviour")
def behaviour_table(member: Any, user: Any) -> tuple[list[Any], Any]:
    """Every event (the page shows the latest 30), the details in full."""
    return (
        [_("When"), _("Event"), _("Touchpoint"), _("Details")],
        (
            [
                event.occurred_at,
                event.get_type_display(),
                str(event.touchpoint or ""),
                " · ".join(f"{key}: {value}" for key, value in event.properties.items()),
            ]
            for event in selectors.member_events(member, limit=None)
        ),
    )
