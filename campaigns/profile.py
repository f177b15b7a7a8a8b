"""The member profile's consent section (PIPL): the state per purpose and the ledger."""

from typing import Any

from django.utils.translation import gettext_lazy as _

from campaigns.selectors.consent import consent_history, consent_states
from members.profile_sections import profile_section, profile_table

HISTORY_ON_PAGE = 50


@profile_section(
    key="consent", title=_("Consent"), order=18, template="campaigns/hq/profile/consent.html"
)
def consent(member: Any, user: Any) -> dict[str, Any]:
    return {
        "states": consent_states(member=member),
        "history": list(consent_history(member=member)[:HISTORY_ON_PAGE]),
        "is_child": member.is_child,
        "member_id": member.pk,
    }


@profile_table(key="consent")
def consent_table(member: Any, user: Any) -> tuple[list[Any], Any]:
    """Every decision, newest first (the page shows the latest 50)."""
    return (
        [
            _("When"),
            _("Purpose"),
            _("Decision"),
            _("How"),
            _("Channel"),
            _("Wording version"),
            _("Assisted by"),
            _("Note"),
        ],
        (
            [
                entry.recorded_at,
                entry.get_purpose_display(),
                entry.decision,
                entry.get_source_display(),
                entry.get_channel_display(),
                entry.wording_version,
                str(entry.assisted_by or ""),
                entry.note,
            ]
            for entry in consent_history(member=member)
        ),
    )
