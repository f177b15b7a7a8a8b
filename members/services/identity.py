"""One person, one member: find the member a set of identities names.

Strong identities (unionid, phone) decide. When they name two different members nothing
is merged silently: a merge suggestion goes to the review queue and the caller is told.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import (
    PER_APP_KINDS,
    PHONE_FIELDS,
    STRONG_KINDS,
    Identity,
    IdentityKind,
    Member,
    MergeSuggestion,
    SuggestionStatus,
)
from members.phones import InvalidPhone, normalize_phone
from members.services.errors import MemberError
from members.services.lifecycle import member_refresh_stage
from scrm.core.pii import last4, phone_digest, phone_digests, previous_keys_configured

# Fields a channel may fill in on a member; existing values are never overwritten by an import.
PROFILE_FIELDS = ("name", "gender", "birthday", "city", "home_store", "source_channel")


@dataclass(frozen=True)
class IdentityKey:
    """One identity as stored: for a phone, `value` is the keyed digest and `hint` its last
    four digits; `phone` carries the number itself in memory only (to seal it on the
    member), never into equality, repr or storage."""

    kind: str
    value: str
    app: str = ""
    hint: str = field(default="", compare=False)
    phone: str = field(default="", compare=False, repr=False)

    @property
    def is_strong(self) -> bool:
        return self.kind in STRONG_KINDS

    def lookup_values(self) -> tuple[str, ...]:
        """The values a stored row for this identity may hold: for a phone during a key
        rotation, its digest under every known key (current first); else just `value`."""
        if self.kind == IdentityKind.PHONE and self.phone and previous_keys_configured():
            return tuple(dict.fromkeys((self.value, *phone_digests(self.phone))))
        return (self.value,)

    def as_lookup(self) -> Q:
        values = self.lookup_values()
        if len(values) == 1:
            return Q(kind=self.kind, app=self.app, value=values[0])
        return Q(kind=self.kind, app=self.app, value__in=values)

    def describe(self) -> dict[str, str]:
        described = {"kind": self.kind, "app": self.app, "value": self.value}
        if self.hint:
            described["hint"] = self.hint
        return described


def phone_key(e164: str) -> IdentityKey:
    """The identity key of a normalised phone: its digest, with the last four as hint."""
    return IdentityKey(
        kind=IdentityKind.PHONE, value=phone_digest(e164), hint=last4(e164), phone=e164
    )


def identity_key(kind: str, value: object, app: str = "") -> IdentityKey:
    """Validate and normalise one identity (phones to E.164); raise MemberError if bad."""
    if kind not in IdentityKind.values:
        raise MemberError(
            "unknown_identity_kind", _("Unknown identity kind “%(kind)s”.") % {"kind": kind}
        )
    text = str(value or "").strip()
    if kind == IdentityKind.PHONE:
        try:
            return phone_key(normalize_phone(text))
        except InvalidPhone as exc:
            raise MemberError(exc.code or "phone_invalid", exc.messages[0]) from exc
    if not text:
        raise MemberError(
            "identity_empty", _("The %(kind)s is empty.") % {"kind": IdentityKind(kind).label}
        )
    if len(text) > 128:
        raise MemberError(
            "identity_too_long",
            _("The %(kind)s is longer than 128 characters.") % {"kind": IdentityKind(kind).label},
        )
    app = app.strip() if kind in PER_APP_KINDS else ""
    if kind in PER_APP_KINDS and not app:
        raise MemberError(
            "identity_app_missing",
            _("An openid needs the app (mini-program or account) it belongs to."),
        )
    return IdentityKey(kind=kind, value=text, app=app)


@dataclass
class Resolution:
    member: Member | None
    created: bool = False
    linked: list[Identity] = field(default_factory=list)
    suggestions: list[MergeSuggestion] = field(default_factory=list)

    @property
    def conflict(self) -> bool:
        return self.member is None


def merge_suggestion_raise(
    *, first: Member, second: Member, reason: str, evidence: Sequence[dict[str, str]]
) -> MergeSuggestion:
    """Queue a pair for review (at most one open suggestion per pair)."""
    a, b = sorted((first, second), key=lambda m: m.pk)
    suggestion, created = MergeSuggestion.objects.get_or_create(
        member_a=a,
        member_b=b,
        status=SuggestionStatus.OPEN,
        defaults={"reason": reason[:200], "evidence": list(evidence)},
    )
    return suggestion


def _holders(keys: Iterable[IdentityKey]) -> dict[IdentityKey, Identity]:
    """The stored identity of each key that has one. A row still holding a previous key's
    digest answers for its key like a current one (the current row wins if both exist)."""
    query = Q()
    wanted: dict[tuple[str, str, str], IdentityKey] = {}
    for key in keys:
        query |= key.as_lookup()
        for value in key.lookup_values():
            wanted.setdefault((key.kind, key.app, value), key)
    found = Identity.objects.filter(query).select_related("member") if query else []
    holders: dict[IdentityKey, Identity] = {}
    for identity in found:
        wanted_key = wanted.get((identity.kind, identity.app, identity.value))
        if wanted_key is not None and (
            wanted_key not in holders or identity.value == wanted_key.value
        ):
            holders[wanted_key] = identity
    return holders


def _live(member: Member) -> Member:
    """Follow merges: an identity still on a merged-away member points to where it went."""
    while member.merged_into_id is not None:
        member = Member.all_objects.get(pk=member.merged_into_id)
    return member


@transaction.atomic
def member_resolve(
    *,
    identities: Sequence[IdentityKey],
    source: str,
    profile: dict[str, Any] | None = None,
    create: bool = True,
) -> Resolution:
    """Find (or create) the member these identities name and link the ones not yet linked.

    Returns Resolution(member=None, suggestions=[…]) on a conflict between strong
    identities (or, with no strong one, between weak ones): then nothing but the
    suggestion is written.
    """
    keys = list(dict.fromkeys(identities))
    if not keys:
        raise MemberError("identity_missing", _("At least one identity is needed."))
    holders = {key: _live(identity.member) for key, identity in _holders(keys).items()}
    strong = {m.pk: m for k, m in holders.items() if k.is_strong}
    weak = {m.pk: m for k, m in holders.items() if not k.is_strong}
    evidence = [k.describe() for k in keys]

    if len(strong) > 1 or (not strong and len(weak) > 1):
        pool = list((strong or weak).values())
        reason = (
            "strong identities name different members"
            if strong
            else "identities name different members"
        )
        suggestions = [
            merge_suggestion_raise(first=pool[0], second=other, reason=reason, evidence=evidence)
            for other in pool[1:]
        ]
        return Resolution(member=None, suggestions=suggestions)

    flagged: list[MergeSuggestion] = []
    if strong:
        member = next(iter(strong.values()))
        # Weak identities held by someone else stay where they are; a person reviews it.
        for other in weak.values():
            if other.pk != member.pk:
                flagged.append(
                    merge_suggestion_raise(
                        first=member,
                        second=other,
                        reason="a channel id belongs to another member",
                        evidence=evidence,
                    )
                )
        created = False
    elif weak:
        member = next(iter(weak.values()))
        created = False
    elif create:
        member = Member.objects.create(source_channel=source, **_clean_profile(profile))
        created = True
    else:
        return Resolution(member=None)

    linked = _link(member=member, keys=[k for k in keys if k not in holders], source=source)
    if linked is None:
        # A concurrent request linked one of these identities first: resolve again against
        # what it committed; raising rolls back the member this call may have created.
        raise _RaceLost
    if not created and profile:
        _fill_blanks(member, profile)
    _sync_phone(member, keys)
    member_refresh_stage(member=member, reason=f"identity from {source}"[:100])
    return Resolution(member=member, created=created, linked=linked, suggestions=flagged)


class _RaceLost(Exception):
    pass


def _link(*, member: Member, keys: Sequence[IdentityKey], source: str) -> list[Identity] | None:
    if not keys:
        return []
    rows = [
        Identity(member=member, kind=k.kind, app=k.app, value=k.value, hint=k.hint, source=source)
        for k in keys
    ]
    Identity.objects.bulk_create(rows, ignore_conflicts=True)
    mine = _holders(keys)
    if any(mine[k].member_id != member.pk for k in keys if k in mine) or len(mine) < len(keys):
        return None
    return [mine[k] for k in keys]


def member_resolve_with_retry(**kwargs: Any) -> Resolution:
    """`member_resolve`, retried once when a concurrent request linked the same identity."""
    for _attempt in range(3):
        try:
            return member_resolve(**kwargs)
        except _RaceLost:
            continue
    raise MemberError(
        "identity_busy", _("These identities are being updated; try again."), status=409
    )


def _clean_profile(profile: dict[str, Any] | None) -> dict[str, Any]:
    if not profile:
        return {}
    return {k: v for k, v in profile.items() if k in PROFILE_FIELDS and v not in (None, "")}


def _fill_blanks(member: Member, profile: dict[str, Any]) -> None:
    changed = []
    for name, value in _clean_profile(profile).items():
        current = getattr(member, name)
        if current in (None, "") or (name == "gender" and current == "u"):
            setattr(member, name, value)
            changed.append(name)
    if changed:
        member.save(update_fields=[*changed, "updated_at"])


def _sync_phone(member: Member, keys: Sequence[IdentityKey]) -> None:
    """The member's phone is the first phone identity it got: every phone key here is the
    member's (a phone is strong, so one held by another member stops resolution)."""
    if member.has_phone:
        return
    phone = next((k.phone for k in keys if k.kind == IdentityKind.PHONE and k.phone), "")
    if phone:
        member.set_phone(phone)
        member.save(update_fields=[*PHONE_FIELDS, "updated_at"])
