"""Reads of the consent ledger: a member's current state per purpose (their latest
entry) and their history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet
from django.utils.functional import Promise

from campaigns.models import MARKETING_CHANNELS, ConsentEntry, ConsentPurpose, MarketingOptOut
from campaigns.services.consent import WORDING, Wording
from members.models import Member

# Whether member `a.id` withdrew profiling: their latest profiling entry says no (one
# index scan of consent_latest_idx). Never asked is not a withdrawal.
PROFILING_WITHDRAWN_SQL = (
    "(SELECT c.granted FROM campaigns_consententry c WHERE c.member_id = a.id "
    "AND c.purpose = 'profiling' ORDER BY c.recorded_at DESC, c.id DESC LIMIT 1) IS FALSE"
)


def profiling_withdrawn(member_ids: list[int]) -> set[int]:
    """Those of `member_ids` whose latest profiling decision is a withdrawal."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT a.id FROM unnest(%s::bigint[]) AS a(id) WHERE {PROFILING_WITHDRAWN_SQL}",
            [member_ids],
        )
        return {row[0] for row in cursor.fetchall()}


@dataclass(frozen=True)
class ConsentState:
    purpose: str
    label: str | Promise
    # The latest decision: True granted, False withdrawn, None never asked.
    granted: bool | None
    # Whether the brand may act on it now. Marketing: the channel is not opted out (what
    # the sender checks; never asked counts as allowed, as before the ledger). Profiling:
    # granted, and for a child under 14 a guardian's consent too. Sensitive data: granted.
    effective: bool
    # Profiling of a child waits for a guardian's consent (the sensitive-data purpose).
    needs_guardian: bool
    decided_at: datetime | None
    entry: ConsentEntry | None
    wording: Wording


def latest_consents(*, member: Member) -> dict[str, ConsentEntry]:
    """The latest entry per purpose (one index scan: DISTINCT ON over consent_latest_idx)."""
    rows = (
        ConsentEntry.objects.filter(member=member)
        .order_by("purpose", "-recorded_at", "-id")
        .distinct("purpose")
    )
    return {row.purpose: row for row in rows}


def consent_states(*, member: Member) -> list[ConsentState]:
    """Every purpose's current state, in the order of `ConsentPurpose`."""
    latest = latest_consents(member=member)
    opted_out = set(MarketingOptOut.objects.filter(member=member).values_list("channel", flat=True))

    def granted(purpose: str) -> bool | None:
        entry = latest.get(purpose)
        return entry.granted if entry is not None else None

    guardian_missing = member.is_child and granted(ConsentPurpose.SENSITIVE) is not True
    states: list[ConsentState] = []
    for purpose in ConsentPurpose:
        gateway = MARKETING_CHANNELS.get(purpose)
        needs_guardian = purpose == ConsentPurpose.PROFILING and guardian_missing
        if gateway is not None:
            effective = not ({"", gateway} & opted_out)
        else:
            effective = granted(purpose) is True and not needs_guardian
        entry = latest.get(purpose)
        states.append(
            ConsentState(
                purpose=purpose.value,
                label=purpose.label,
                granted=granted(purpose),
                effective=effective,
                needs_guardian=needs_guardian,
                decided_at=entry.recorded_at if entry is not None else None,
                entry=entry,
                wording=WORDING[purpose],
            )
        )
    return states


def consent_state(*, member: Member, purpose: str) -> ConsentState:
    return next(s for s in consent_states(member=member) if s.purpose == purpose)


def consent_history(*, member: Member) -> QuerySet[ConsentEntry]:
    """Every decision of the member, newest first, with the staff who assisted."""
    return (
        ConsentEntry.objects.filter(member=member)
        .select_related("assisted_by")
        .order_by("-recorded_at", "-id")
    )
