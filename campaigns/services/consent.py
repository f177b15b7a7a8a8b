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
    now: datetime | None = None,
) -> ConsentEntry:
    """Record one consent decision and apply it.

    For a marketing purpose this one function writes both the ledger entry and the
    `MarketingOptOut` row the sender checks (withdrawn: the row for the channel exists;
    granted: it is gone), in one transaction under the member's row lock. Two writes
    kept apart could disagree — the ledger saying "withdrawn" while messages still go
    out, or a grant that never reaches the sender — and concurrent decisions for one
    member could leave the row matching the older one; together they cannot.

    An unknown purpose, source or channel, or a wording version we never showed, is
    refused (400) and nothing is written. Without a version the current wording's is
    recorded: the one the page asking showed."""
    if purpose not in ConsentPurpose.values:
        raise MemberError("unknown_purpose", _("Unknown consent purpose."))
    if source not in ConsentSource.values:
        raise MemberError("unknown_source", _("Unknown consent source."))
    if channel not in ConsentChannel.values:
        raise MemberError("unknown_channel", _("Unknown consent channel."))
    current = WORDING[purpose].version
    version = wording_version or current
    if version != current:
        raise MemberError(
            "unknown_wording",
            _("The wording version %(version)s is not the one shown for this purpose.")
            % {"version": version},
        )
    (locked,) = lock_members(member)
    entry = ConsentEntry.objects.create(
        member=locked,
        purpose=purpose,
        granted=granted,
        recorded_at=now or timezone.now(),
        source=source,
        channel=channel,
        wording_version=version,
        assisted_by=assisted_by,
    )
    gateway = MARKETING_CHANNELS.get(purpose)
    if gateway is not None:
        if granted:
            _marketing_allow(locked, gateway)
        else:
            MarketingOptOut.objects.get_or_create(member=locked, channel=gateway)
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
