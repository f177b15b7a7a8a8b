"""Channel QR codes (渠道活码): what a scan does. The code is locked while the rotation
moves on, so two scans at once never give the same slot twice or overrun a daily cap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import AssignmentReason, Member, TagSource
from members.services.errors import MemberError
from members.services.guides import guide_assign
from members.services.tags import tags_bulk_apply
from scrm.org.models import Staff
from scrm.org.scoping import Role
from touchpoints.models import QrCode, QrCodeGuide, QrGuideDay


@dataclass(frozen=True)
class ScanResult:
    tagged: int
    assigned: int
    guide_id: int | None
    welcome_message: str


def _is_guide(staff: Staff | None) -> bool:
    return staff is not None and staff.is_active and staff.role == Role.GUIDE


def _next_guide(qr: QrCode, day: date) -> tuple[Staff | None, int | None]:
    """The rotation's next guide under their daily cap, starting where the last scan left
    off; else the backup guide. Returns (guide, index in the rotation or None)."""
    rotation = list(
        QrCodeGuide.objects.filter(qr_code=qr).select_related("guide").order_by("position")
    )
    if rotation:
        counts = dict(
            QrGuideDay.objects.filter(qr_code=qr, day=day).values_list("guide_id", "count")
        )
        for step in range(len(rotation)):
            index = (qr.next_position + step) % len(rotation)
            slot = rotation[index]
            if not _is_guide(slot.guide):
                continue
            if slot.daily_cap is not None and counts.get(slot.guide_id, 0) >= slot.daily_cap:
                continue
            return slot.guide, index
    if _is_guide(qr.backup_guide):
        return qr.backup_guide, None
    return None, None


@transaction.atomic
def qr_scan(*, touchpoint_id: int, member_id: int, at: datetime | None = None) -> ScanResult:
    """Tag the person with the code's tags and, if they have no guide yet, give them the
    rotation's next guide (counted against that guide's cap for the day)."""
    at = at or timezone.now()
    qr = (
        QrCode.objects.select_for_update(of=("self",))
        .select_related("touchpoint", "backup_guide")
        .filter(touchpoint_id=touchpoint_id)
        .first()
    )
    if qr is None:
        return ScanResult(0, 0, None, "")
    if not qr.is_valid(at):
        raise MemberError("qr_expired", _("This QR code is not valid at the time of the scan."))
    tagged = 0
    for tag in qr.tags.filter(active=True):
        tagged += tags_bulk_apply(
            tag=tag,
            member_ids=[member_id],
            source=TagSource.CHANNEL_QR,
            source_ref=qr.token,
            now=at,
        ).changed
    member = Member.objects.get(pk=member_id)
    if member.guide_id is not None:
        return ScanResult(tagged, 0, member.guide_id, qr.welcome_message)
    day = timezone.localdate(at)
    guide, index = _next_guide(qr, day)
    if guide is None:
        return ScanResult(tagged, 0, None, qr.welcome_message)
    try:
        assignment = guide_assign(
            member=member, guide=guide, reason=AssignmentReason.QR_CODE, note=str(qr)[:200], now=at
        )
    except MemberError:
        # The guide works at another store than the person's: no guide from this code.
        return ScanResult(tagged, 0, None, qr.welcome_message)
    if assignment is None:
        return ScanResult(tagged, 0, member.guide_id, qr.welcome_message)
    counted = QrGuideDay.objects.filter(qr_code=qr, guide=guide, day=day).update(
        count=F("count") + 1
    )
    if not counted:
        QrGuideDay.objects.create(qr_code=qr, guide=guide, day=day, count=1)
    if index is not None:
        rotation_size = QrCodeGuide.objects.filter(qr_code=qr).count()
        qr.next_position = (index + 1) % rotation_size
        qr.save(update_fields=["next_position"])
    return ScanResult(tagged, 1, guide.pk, qr.welcome_message)
