"""Showing a member's full phone: allowed, scoped, and recorded every time."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _

from members.models import Member, can_see_full_phone
from scrm.audit.models import AuditAction
from scrm.audit.services import record_event


def member_unmask_phone(*, user: Any, member_id: int, origin: str) -> tuple[Member, str]:
    """The member (within `user`'s scope) and their full phone, with an UNMASK audit event.

    Without the view_full_phone permission: PermissionDenied; a member outside the user's
    scope (or unknown): Http404. Neither records anything. A member with no phone gives ""
    and records nothing either: nothing was shown.
    """
    if not can_see_full_phone(user):
        raise PermissionDenied(_("You do not have permission to see full phone numbers."))
    member = Member.objects.for_user(user).filter(pk=member_id).first()
    if member is None:
        raise Http404
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
    return member, phone
