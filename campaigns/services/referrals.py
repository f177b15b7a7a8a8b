"""Referrals (裂变): hand out invite codes, record who invited whom, pay on registration.

A friend opening an invite is only a claim (`referral_claim`); the reward waits until they
become a registered member by binding a phone (`referral_credit`), because a phone is the
one identity a fraudster cannot mint by the hundred. Rewards reach two people at most —
the inviter and the inviter's inviter — as deeper distribution chains are a legal risk.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models import (
    MAX_REFERRAL_LEVELS,
    InviteCode,
    Referral,
    ReferralProgramme,
    ReferralRejection,
    ReferralStatus,
)
from members.locks import lock_members
from members.models import Identity, IdentityKind, LedgerEntry, Member, PointsKind
from members.services.errors import Conflict, MemberError, NotFound
from members.services.points import points_earn

logger = logging.getLogger(__name__)

# No 0/O, 1/I/L: codes are read aloud and typed from posters.
INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
INVITE_CODE_LENGTH = 8
MAX_DEVICE_ID_LENGTH = 64
# Ledger source for referral rewards; the reference names the referral and the level.
REFERRAL_SOURCE = "referral"


def _new_code() -> str:
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_CODE_LENGTH))


def invite_code_for(member: Member) -> InviteCode:
    """The member's invite code, created on first request and the same ever after."""
    existing = InviteCode.objects.filter(member=member).first()
    if existing is not None:
        return existing
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return InviteCode.objects.create(member=member, code=_new_code())
        except IntegrityError:
            # Either another request just gave this member a code, or (rarely) the random
            # code is taken: use theirs, or draw again.
            existing = InviteCode.objects.filter(member=member).first()
            if existing is not None:
                return existing
    raise RuntimeError("could not draw an unused invite code")  # pragma: no cover


def normalize_invite_code(code: object) -> str:
    """Codes are shown upper case; people type them any way."""
    return code.strip().upper() if isinstance(code, str) else ""


def referral_level_check(level: int | None) -> None:
    """Refuse a request that asks for a reward deeper than the inviter's inviter."""
    if level is not None and level > MAX_REFERRAL_LEVELS:
        raise MemberError(
            "referral_too_deep",
            _("Referral chains are limited to two levels."),
        )


def _live_member_id(member_id: int) -> int:
    """Follow merges to the member who now stands for `member_id`."""
    for _hop in range(10):
        merged_into = (
            Member.all_objects.filter(pk=member_id).values_list("merged_into_id", flat=True).first()
        )
        if merged_into is None:
            return member_id
        member_id = merged_into
    return member_id  # pragma: no cover - merges are never chained this deep


def _is_upline(*, member_id: int, of_member_id: int) -> bool:
    """Whether `member_id` invited `of_member_id`, directly or further up the chain."""
    table = Referral._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE up(member_id, depth) AS (
                SELECT inviter_id, 1 FROM {table} WHERE invitee_id = %s
                UNION
                SELECT r.inviter_id, up.depth + 1 FROM {table} r
                JOIN up ON r.invitee_id = up.member_id WHERE up.depth < 1000
            )
            SELECT EXISTS (SELECT 1 FROM up WHERE member_id = %s)
            """,
            [of_member_id, member_id],
        )
        row = cursor.fetchone()
    return bool(row and row[0])


@transaction.atomic
def referral_claim(
    *, invitee: Member, code: str, device_id: str, level: int | None = None
) -> Referral:
    """Record that `invitee` arrived through `code`; the reward waits for registration.

    Refused, writing nothing: an off programme, an unknown or own code, an invitee who
    already has an inviter, is already a registered member or has invited others (which
    could close a loop), and a device another invite already used. Invitee and inviter
    are locked in pk order, so of two racing claims that could form a loop the second
    sees the first; the unique invitee and device columns settle the remaining races.
    """
    referral_level_check(level)
    code = normalize_invite_code(code)
    device_id = device_id.strip() if isinstance(device_id, str) else ""
    if not device_id:
        raise MemberError("device_id_missing", _("A device id is required."))
    if len(device_id) > MAX_DEVICE_ID_LENGTH:
        raise MemberError("device_id_invalid", _("The device id is too long."))
    if not ReferralProgramme.current().active:
        raise Conflict("referral_programme_off", _("Invitations are not running at the moment."))
    owner_id = (
        InviteCode.objects.filter(code=code).values_list("member_id", flat=True).first()
        if code
        else None
    )
    if owner_id is None:
        raise NotFound("invite_code_unknown", _("This invite code does not exist."))
    inviter_id = _live_member_id(owner_id)
    if inviter_id == invitee.pk:
        raise MemberError("self_invite", _("You cannot use your own invite code."))
    invitee, inviter = lock_members(invitee, Member.all_objects.get(pk=inviter_id))
    if Referral.objects.filter(invitee=invitee).exists():
        raise Conflict("already_invited", _("You have already accepted an invitation."))
    if invitee.member_since is not None or invitee.has_phone:
        raise Conflict(
            "already_member", _("Invitations are for new members; you are already a member.")
        )
    if Referral.objects.filter(inviter=invitee).exists():
        if _is_upline(member_id=invitee.pk, of_member_id=inviter.pk):
            raise Conflict(
                "referral_cycle",
                _("This member joined through you, so you cannot join through them."),
            )
        raise Conflict(
            "invitee_has_invitees",
            _("You have already invited friends, so you cannot join through an invitation."),
        )
    if Referral.objects.filter(device_id=device_id).exists():
        raise Conflict(
            "device_already_used", _("This device has already been used to accept an invitation.")
        )
    level2_inviter_id = (
        Referral.objects.filter(invitee=inviter)
        .exclude(status=ReferralStatus.REJECTED)
        .values_list("inviter_id", flat=True)
        .first()
    )
    try:
        with transaction.atomic():
            return Referral.objects.create(
                invitee=invitee,
                inviter=inviter,
                level2_inviter_id=level2_inviter_id,
                device_id=device_id,
            )
    except IntegrityError as exc:  # the same device, claimed by someone else a moment ago
        raise Conflict(
            "device_already_used", _("This device has already been used to accept an invitation.")
        ) from exc


def _rejection(referral: Referral, invitee: Member, programme: ReferralProgramme) -> str:
    if not programme.active:
        return ReferralRejection.PROGRAMME_OFF
    # Phone lookups go through identities (by digest: the number itself is never stored).
    # A phone another member holds, or one an earlier invite already recorded (the number
    # was unbound and reused since), has been seen before.
    # Every known key's digest: rows a key rotation has not reached yet count too.
    digests = invitee.phone_digests()
    phone_seen = (
        Identity.objects.filter(kind=IdentityKind.PHONE, value__in=digests)
        .exclude(member=invitee)
        .exists()
        or Referral.objects.filter(invitee_phone__in=digests).exclude(pk=referral.pk).exists()
    )
    if phone_seen:
        return ReferralRejection.PHONE_REPEATED
    if _live_member_id(referral.inviter_id) == invitee.pk:
        return ReferralRejection.SELF_INVITE
    return ""


def _pay(
    *, member_id: int, referral: Referral, level: int, points: int, programme: ReferralProgramme
) -> int:
    """Credit one level's reward through the ledger; the key makes a retry a no-op."""
    if points <= 0:
        return 0
    now = timezone.now()
    expires_at = (
        now + timedelta(days=programme.points_valid_days) if programme.points_valid_days else None
    )
    points_earn(
        member_id=member_id,
        kind=PointsKind.ACTIVITY,
        amount=points,
        source=REFERRAL_SOURCE,
        external_id=f"referral:{referral.pk}:level{level}",
        expires_at=expires_at,
        reason=f"referral reward, level {level}: member #{referral.invitee_id} registered",
        now=now,
    )
    return points


@transaction.atomic
def referral_credit(*, invitee: Member) -> Referral | None:
    """Reward the invitee's inviter (level 1) and the inviter's inviter (level 2) now that
    the invitee registered. Never anyone further up.

    None when the invitee has no pending referral (most members), so registration can call
    it unconditionally; a decided referral is never paid again. A repeated phone, an off
    programme or an inviter merged into the invitee decides it as rejected, paying nothing.
    """
    referral = (
        Referral.objects.select_for_update()
        .filter(invitee=invitee, status=ReferralStatus.PENDING)
        .first()
    )
    if referral is None:
        return None
    invitee = Member.all_objects.get(pk=invitee.pk)
    if invitee.member_since is None or not invitee.has_phone:
        return referral  # not registered yet: stays pending
    programme = ReferralProgramme.current()
    referral.invitee_phone = invitee.phone_digests()[0]  # the current key's
    referral.decided_at = timezone.now()
    fields = ["status", "invitee_phone", "decided_at"]
    rejection = _rejection(referral, invitee, programme)
    if rejection:
        referral.status = ReferralStatus.REJECTED
        referral.rejected_reason = rejection
        referral.save(update_fields=[*fields, "rejected_reason"])
        return referral
    referral.level1_points = _pay(
        member_id=_live_member_id(referral.inviter_id),
        referral=referral,
        level=1,
        points=programme.level1_points,
        programme=programme,
    )
    if referral.level2_inviter_id is not None and _level2_still_earns(referral, invitee):
        referral.level2_points = _pay(
            member_id=_live_member_id(referral.level2_inviter_id),
            referral=referral,
            level=2,
            points=programme.level2_points,
            programme=programme,
        )
    # Deliberately no level 3: the chain stops at the inviter's inviter (MAX_REFERRAL_LEVELS).
    referral.status = ReferralStatus.CREDITED
    referral.save(update_fields=[*fields, "level1_points", "level2_points"])
    return referral


def _level2_still_earns(referral: Referral, invitee: Member) -> bool:
    """The inviter's inviter earns only while the inviter's own invite stands (not rejected)
    and they are not, after a merge, the invitee themselves."""
    assert referral.level2_inviter_id is not None
    if _live_member_id(referral.level2_inviter_id) == invitee.pk:
        return False
    return not Referral.objects.filter(
        invitee_id=referral.inviter_id, status=ReferralStatus.REJECTED
    ).exists()


def referral_credit_after_registration(*, invitee: Member) -> None:
    """Registration's hook: a referral problem must never fail or undo a registration that
    already committed, so errors are logged and the referral stays pending (HQ can credit
    it from the admin)."""
    try:
        referral_credit(invitee=invitee)
    except Exception:
        logger.exception("referral credit failed for member %s; left pending", invitee.pk)


@dataclass(frozen=True)
class ReferralSummary:
    code: str
    active: bool
    invitees_credited: int  # friends who registered through the member's code
    invitees_pending: int  # friends who opened the invite but have not registered yet
    second_level_credited: int  # their friends' friends who registered
    points_earned: int  # referral rewards credited to the member, from the ledger


def referral_summary(*, member: Member) -> ReferralSummary:
    """What the mini-program's invite page shows (creates the code on first visit)."""
    code = invite_code_for(member)
    counts = Referral.objects.filter(Q(inviter=member) | Q(level2_inviter=member)).aggregate(
        credited=Count("pk", filter=Q(inviter=member, status=ReferralStatus.CREDITED)),
        pending=Count("pk", filter=Q(inviter=member, status=ReferralStatus.PENDING)),
        second=Count(
            "pk",
            filter=Q(level2_inviter=member, status=ReferralStatus.CREDITED, level2_points__gt=0),
        ),
    )
    earned = LedgerEntry.objects.filter(
        account__member=member, source=REFERRAL_SOURCE, amount__gt=0
    ).aggregate(total=Sum("amount"))["total"]
    return ReferralSummary(
        code=code.code,
        active=ReferralProgramme.current().active,
        invitees_credited=counts["credited"],
        invitees_pending=counts["pending"],
        second_level_credited=counts["second"],
        points_earned=int(earned or 0),
    )
