"""A member's phone: showing it in full (allowed, scoped, recorded every time) and staff
setting it (through the identity every lookup uses)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _

from members.models import PHONE_FIELDS, Channel, Identity, IdentityKind, Member, can_see_full_phone
from members.phones import try_normalize_phone
from members.services.errors import MemberError
from scrm.audit.models import AuditAction
from scrm.audit.services import record_event


def member_unmask_phone(*, user: Any, member: Member, origin: str) -> str:
    """The full phone of `member` (loaded by the caller within `user`'s scope, so one
    out of it never gets here), with an UNMASK audit event.

    Without the view_full_phone permission: PermissionDenied, recording nothing. A member
    with no phone gives "" and records nothing either: nothing was shown.
    """
    if not can_see_full_phone(user):
        raise PermissionDenied(_("You do not have permission to see full phone numbers."))
    phone = member.reveal_phone()
    if phone:
        record_event(
            AuditAction.UNMASK,
            actor=user,
            member_id=member.pk,
            table="members_member",
            row_id=member.pk,
            detail={"field": "phone"},
            origin=origin,
        )
    return phone


def members_holding_phone(phone: str) -> list[Member]:
    """The live members holding a phone as typed (any common form), by their phone
    identity (a merged-away holder: where it went) or their own number; reads only,
    creating nobody. A text that is no phone number holds nobody."""
    from members.services.identity import _live, phone_key

    e164 = try_normalize_phone(phone)
    if e164 is None:
        return []
    digests = phone_key(e164).lookup_values()
    by_identity = Member.all_objects.filter(
        identities__kind=IdentityKind.PHONE, identities__app="", identities__value__in=digests
    )
    found = {_live(m).pk: _live(m) for m in by_identity}
    for member in Member.objects.filter(phone_digest__in=digests).exclude(pk__in=found):
        found[member.pk] = member
    return list(found.values())


def phone_holder(*, phone: str, member: Member | None = None) -> Member | None:
    """The live member (other than `member`) whose phone identity is this normalised
    number, under any configured key; None when nobody else holds it."""
    from members.services.identity import phone_key

    holder = (
        Identity.objects.filter(
            kind=IdentityKind.PHONE, app="", value__in=phone_key(phone).lookup_values()
        )
        .exclude(member=member)
        .select_related("member")
        .first()
    )
    return holder.member if holder is not None else None


@transaction.atomic
def member_set_phone(*, member: Member, phone: str) -> Member:
    """Give `member` this normalised phone (staff correcting a record): the member's sealed
    copy and digest, and the phone identity every lookup goes through (the identity of a
    number it replaces goes). A number another member holds is refused, nothing written:
    that is a merge for staff to decide."""
    from members.services.identity import phone_key

    if phone_holder(phone=phone, member=member) is not None:
        raise MemberError(
            "phone_taken",
            _("This phone number belongs to another member record: merge the two instead."),
        )
    key = phone_key(phone)
    member = Member.objects.select_for_update().get(pk=member.pk)
    replaced = member.phone_digest
    member.set_phone(phone)
    member.save(update_fields=[*PHONE_FIELDS, "updated_at"])
    mine = Identity.objects.filter(member=member, kind=IdentityKind.PHONE, app="")
    if replaced and replaced not in key.lookup_values():
        mine.filter(value=replaced).delete()
    if not mine.filter(value__in=key.lookup_values()).exists():
        Identity.objects.create(
            member=member,
            kind=IdentityKind.PHONE,
            app="",
            value=key.value,
            hint=key.hint,
            source=Channel.OTHER,
        )
    return member
