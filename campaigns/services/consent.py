"""Recording consent decisions (PIPL), and the signed unsubscribe links of messages.

A decision is one append-only `ConsentEntry`. For a marketing purpose the sender's own
check — a `MarketingOptOut` row for the channel, which planning, sending and journeys
read in SQL — is written in the same transaction, so there stays one send-time check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns.models import (
    CHANNEL_PURPOSES,
    GUIDE_POSTED,
    MARKETING_CHANNELS,
    ConsentChannel,
    ConsentEntry,
    ConsentPurpose,
    ConsentSource,
    GatewayKind,
    MarketingOptOut,
)
from campaigns.services.tracking import SIGNATURE_LENGTH
from members.locks import lock_members
from members.models import Member
from members.services.errors import MemberError
from scrm.org.models import Staff


@dataclass(frozen=True)
class Wording:
    version: str
    text: str | Promise


# What the member is shown when asked, per purpose. A changed text gets a new version, so
# each ledger entry names the words its member saw.
WORDING: dict[str, Wording] = {
    ConsentPurpose.MARKETING_INBOX: Wording(
        "2026-11",
        gettext_lazy(
            "I agree to receive offers and event news in the mini-program's message centre."
        ),
    ),
    ConsentPurpose.MARKETING_SMS: Wording(
        "2026-11", gettext_lazy("I agree to receive offers and event news by SMS.")
    ),
    ConsentPurpose.MARKETING_WECOM: Wording(
        "2026-11",
        gettext_lazy("I agree that my guide sends me offers and event news on WeCom."),
    ),
    ConsentPurpose.MARKETING_SUBSCRIPTION: Wording(
        "2026-11",
        gettext_lazy("I agree to receive offers as mini-program subscription messages."),
    ),
    ConsentPurpose.PROFILING: Wording(
        "2026-11",
        gettext_lazy(
            "I agree that my purchases and browsing are used to recommend products to me."
        ),
    ),
    ConsentPurpose.SENSITIVE: Wording(
        "2026-11",
        gettext_lazy(
            "I agree that sensitive personal information is processed; for a child under "
            "14, I am their guardian and agree on their behalf."
        ),
    ),
}
# Unsubscribe links exist for the channels whose texts can carry a link.
UNSUBSCRIBE_CHANNELS = (GatewayKind.INBOX, GatewayKind.SMS)
UNSUBSCRIBE_SALT = "campaigns.unsubscribe"
NOTE_MAX_LENGTH = 300


@transaction.atomic
def consent_record(
    *,
    member: Member,
    purpose: str,
    granted: bool,
    source: str,
    channel: str,
    wording_version: str = "",
    assisted_by: Staff | None = None,
    note: str = "",
    now: datetime | None = None,
) -> ConsentEntry:
    """Record one consent decision and apply it.

    For a marketing purpose this one function writes both the ledger entry and the
    `MarketingOptOut` row the sender checks (withdrawn: the row for the channel exists;
    granted: it is gone), in one transaction under the member's row lock. Two writes
    kept apart could disagree — the ledger saying "withdrawn" while messages still go
    out, or a grant that never reaches the sender — and concurrent decisions for one
    member could leave the row matching the older one; together they cannot.

    An unknown purpose, source or channel, a wording version we never showed, or a note
    over 300 characters, is refused (400) and nothing is written. Without a version the
    current wording's is recorded: the one the page asking showed."""
    if purpose not in ConsentPurpose.values:
        raise MemberError("unknown_purpose", _("Unknown consent purpose."))
    if source not in ConsentSource.values:
        raise MemberError("unknown_source", _("Unknown consent source."))
    if channel not in ConsentChannel.values:
        raise MemberError("unknown_channel", _("Unknown consent channel."))
    if len(note) > NOTE_MAX_LENGTH:
        raise MemberError(
            "note_too_long",
            _("The note is longer than %(max)s characters.") % {"max": NOTE_MAX_LENGTH},
        )
    current = WORDING[purpose].version
    version = wording_version or current
    if version != current:
        raise MemberError(
            "unknown_wording",
            _("The wording version %(version)s is not the one shown for this purpose.")
            % {"version": version},
        )
    (locked,) = lock_members(member)
    return consent_apply(
        member=locked,
        purpose=purpose,
        granted=granted,
        source=source,
        channel=channel,
        wording_version=version,
        assisted_by=assisted_by,
        note=note.strip(),
        now=now,
    )


def consent_apply(
    *,
    member: Member,
    purpose: str,
    granted: bool | None,
    source: str,
    channel: str,
    wording_version: str,
    assisted_by: Staff | None = None,
    note: str = "",
    now: datetime | None = None,
) -> ConsentEntry:
    """Write an entry and the sender's opt-out to match, unchecked: the caller validated
    it and holds the member's row lock (`consent_record`, or a merge carrying a decision
    over with the wording version it was made under). `granted=None` returns a purpose to
    no decision: for marketing, the channel's own opt-out row goes (never asked counts
    as allowed, as before the ledger)."""
    entry = ConsentEntry.objects.create(
        member=member,
        purpose=purpose,
        granted=granted,
        recorded_at=now or timezone.now(),
        source=source,
        channel=channel,
        wording_version=wording_version,
        assisted_by=assisted_by,
        note=note,
    )
    gateway = MARKETING_CHANNELS.get(purpose)
    if gateway is not None:
        if granted:
            _marketing_allow(member, gateway)
        elif granted is None:
            MarketingOptOut.objects.filter(member=member, channel=gateway).delete()
        else:
            MarketingOptOut.objects.get_or_create(member=member, channel=gateway)
    return entry


def _marketing_allow(member: Member, gateway: str) -> None:
    """Lift the opt-out on one channel. An opt-out from every channel (a blank row) is
    narrowed to the other channels: yes to SMS is not yes to WeCom."""
    if MarketingOptOut.objects.filter(member=member, channel="").delete()[0]:
        others = [
            kind for kind in GatewayKind.values if kind != gateway and kind not in GUIDE_POSTED
        ]
        MarketingOptOut.objects.bulk_create(
            [MarketingOptOut(member=member, channel=kind) for kind in others],
            ignore_conflicts=True,
        )
    MarketingOptOut.objects.filter(member=member, channel=gateway).delete()


# --- unsubscribe links (/u/<token>) ------------------------------------------------------


class _ShortSigner(signing.Signer):
    """The signature cut short like tracked links': an SMS should stay short."""

    def signature(self, value: str | bytes, key: str | bytes | None = None) -> str:
        return super().signature(value, key)[:SIGNATURE_LENGTH]


def _signer() -> _ShortSigner:
    return _ShortSigner(salt=UNSUBSCRIBE_SALT, sep=".")


def unsubscribe_token(*, member_id: int, channel: str) -> str:
    """A signed token naming a member and a channel, such as `G7-sms.x3Fq…`."""
    if channel not in UNSUBSCRIBE_CHANNELS:
        raise ValueError(f"No unsubscribe link for {channel}")
    return _signer().sign(f"{signing.b62_encode(member_id)}-{channel}")


def unsubscribe_url(*, member_id: int, channel: str) -> str:
    """The absolute unsubscribe link (SCRM_PUBLIC_URL + /u/<token>)."""
    path = reverse("unsubscribe", args=[unsubscribe_token(member_id=member_id, channel=channel)])
    return f"{settings.SCRM_PUBLIC_URL.rstrip('/')}{path}"


def unsubscribe_target(token: str) -> tuple[Member, str] | None:
    """The member and channel a token names, or None for a forged, tampered or stale one
    (its member gone)."""
    try:
        member_part, channel = _signer().unsign(token).split("-", 1)
        member_id = signing.b62_decode(member_part)
    except (signing.BadSignature, ValueError):
        return None
    if channel not in UNSUBSCRIBE_CHANNELS or member_id <= 0:
        return None
    member = Member.objects.filter(pk=member_id).first()
    return (member, channel) if member is not None else None


def unsubscribe(*, token: str, now: datetime | None = None) -> ConsentEntry:
    """Withdraw marketing on the token's channel, recorded as coming from its link. A bad
    token is refused (404) and nothing is written."""
    target = unsubscribe_target(token)
    if target is None:
        raise MemberError("link_not_found", _("This link is not valid."), status=404)
    member, channel = target
    return consent_record(
        member=member,
        purpose=CHANNEL_PURPOSES[channel],
        granted=False,
        source=ConsentSource.UNSUBSCRIBE_LINK,
        channel=channel,  # inbox and sms are consent channels too
        now=now,
    )


# --- merging two members ---------------------------------------------------------------


@dataclass(frozen=True)
class _Decision:
    granted: bool
    at: datetime
    channel: str
    wording_version: str
    # An opt-out from before the ledger: a withdrawal without an entry.
    legacy: bool = False


def _decisions(member: Member, *, before_pk: int | None = None) -> dict[str, _Decision]:
    """The member's decision per purpose: their latest entry (of those before
    `before_pk`), or for marketing without one an opt-out row from before the ledger
    (only when `before_pk` is None: the rows are what they are now)."""
    entries = ConsentEntry.objects.filter(member=member)
    if before_pk is not None:
        entries = entries.filter(pk__lt=before_pk)
    latest = {
        row.purpose: row
        for row in entries.order_by("purpose", "-recorded_at", "-id").distinct("purpose")
    }
    opt_outs = (
        dict(MarketingOptOut.objects.filter(member=member).values_list("channel", "created_at"))
        if before_pk is None
        else {}
    )
    decisions: dict[str, _Decision] = {}
    for purpose in ConsentPurpose.values:
        entry = latest.get(purpose)
        if entry is not None:
            if entry.granted is not None:
                decisions[purpose] = _Decision(
                    entry.granted, entry.recorded_at, entry.channel, entry.wording_version
                )
            continue
        gateway = MARKETING_CHANNELS.get(purpose)
        since = (opt_outs.get(gateway) or opt_outs.get("")) if gateway else None
        if since is not None:
            decisions[purpose] = _Decision(
                False, since, ConsentChannel.BACK_OFFICE, "", legacy=True
            )
    return decisions


def consent_merge_move(kept: Member, dropped: Member) -> list[int]:
    """A merge (both members locked): per purpose the kept member takes the most recent
    decision of either person — a withdrawal wins a tie, and an opt-out from before the
    ledger is never lifted by the other's grant. Each change is a new entry for the kept
    member (source "merge", with the channel and wording version the decision was made
    under) and its opt-out row; the dropped member's ledger stays theirs. Returns the new
    entries' ids, for undo."""
    mine, theirs = _decisions(kept), _decisions(dropped)
    now = timezone.now()
    created: list[int] = []
    for purpose, decision in theirs.items():
        current = mine.get(purpose)
        if current is not None:
            if current.granted == decision.granted:
                continue
            if current.at > decision.at or (current.at == decision.at and not current.granted):
                continue
            if current.legacy and decision.granted:
                continue
        entry = consent_apply(
            member=kept,
            purpose=purpose,
            granted=decision.granted,
            source=ConsentSource.MERGE,
            channel=decision.channel,
            wording_version=decision.wording_version,
            now=now,
        )
        created.append(entry.pk)
    return created


def consent_merge_restore(kept: Member, dropped: Member, entry_ids: list[int]) -> None:
    """Undoing a merge: for each purpose the merge changed, the kept member gets back the
    decision they had before it (or none), as a new entry — unless they decided that
    purpose again since, which stands. A withdrawal made since on the merged member is
    also recorded for the dropped member: it may have been theirs, and a withdrawal is
    never silently lost."""
    now = timezone.now()
    for entry in ConsentEntry.objects.filter(pk__in=entry_ids, member=kept).order_by("pk"):
        since = (
            ConsentEntry.objects.filter(member=kept, purpose=entry.purpose, pk__gt=entry.pk)
            .order_by("-recorded_at", "-id")
            .first()
        )
        if since is not None:
            if since.granted is False:
                dropped_now = _decisions(dropped).get(entry.purpose)
                if dropped_now is None or dropped_now.granted:
                    consent_apply(
                        member=dropped,
                        purpose=entry.purpose,
                        granted=False,
                        source=ConsentSource.MERGE,
                        channel=since.channel,
                        wording_version=since.wording_version,
                        now=now,
                    )
            continue
        before = _decisions(kept, before_pk=entry.pk).get(entry.purpose)
        consent_apply(
            member=kept,
            purpose=entry.purpose,
            granted=before.granted if before is not None else None,
            source=ConsentSource.MERGE,
            channel=before.channel if before is not None else entry.channel,
            wording_version=before.wording_version if before is not None else "",
            now=now,
        )
