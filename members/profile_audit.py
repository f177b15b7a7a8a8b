"""The member profile's history section: the member's latest audit events, for those who
may read the audit trail, with a link to the whole of it in the HQ audit viewer.

It lives in the member app (registered from `members/profile.py`) because the audit app
sits below the member app and imports nothing from it."""

from typing import Any

from django.utils.translation import gettext_lazy as _

from members.profile_sections import profile_section
from scrm.audit.selectors import changes, member_history
from scrm.audit.tables import table_label

HISTORY_ON_PAGE = 10


def can_view_audit(user: Any) -> bool:
    return bool(getattr(user, "can_view_audit", False))


@profile_section(
    key="audit",
    title=_("Change history"),
    order=95,
    template="audit/hq/profile_history.html",
    visible=can_view_audit,
)
def audit_history(member: Any, user: Any) -> dict[str, Any]:
    return {
        "events": [
            {
                "event": event,
                "record": table_label(event.table) if event.table else "",
                "changes": changes(event),
            }
            for event in member_history(member_id=member.pk, limit=HISTORY_ON_PAGE)
        ],
    }
