"""Coupons: issue (once per source and reference, within the template's limits), use,
revoke, expire, and the automatic birthday gifts. Every change is written to the
coupon's log with who did it."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import (
    Coupon,
    CouponLog,
    CouponStatus,
    CouponTemplate,
    Member,
)
from members.services.errors import MemberError, NotFound

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out at a till


class CouponError(MemberError):
    """A refused coupon operation; nothing was written."""


def _code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))


def _log(coupon: Coupon, action: str, now: datetime, actor: Any = None, note: str = "") -> None:
    CouponLog.objects.create(
        coupon=coupon,
        action=action,
        note=note[:200],
        actor=actor if getattr(actor, "pk", None) else None,
        at=now,
    )


def coupon_issue(
    *,
    template: CouponTemplate,
    member_id: int,
    source: str,
    source_ref: str,
    actor: Any = None,
    note: str = "",
    now: datetime | None = None,
) -> Coupon:
    """Issue one coupon of `template` to the member. Issuing again with the same source
    and reference returns the first coupon; the template's per-member and total limits
    hold under concurrency (the member row is locked while their count is checked, and
    the total is taken by a conditional UPDATE)."""
    now = now or timezone.now()
    existing = Coupon.objects.filter(source=source, source_ref=source_ref).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        member = Member.all_objects.select_for_update().filter(pk=member_id).first()
        if member is None:
            raise NotFound("member_not_found", _("No such member."))
        existing = Coupon.objects.filter(source=source, source_ref=source_ref).first()
        if existing is not None:
            return existing
        if not template.active:
            raise CouponError("coupon_template_inactive", _("This coupon is no longer issued."))
        if template.per_member_limit is not None:
            held = Coupon.objects.filter(template=template, member_id=member_id).count()
            if held >= template.per_member_limit:
                raise CouponError(
                    "coupon_limit_reached",
                    _("This member already has the most coupons of this kind (%(limit)s).")
                    % {"limit": template.per_member_limit},
                    status=409,
                )
        taken = CouponTemplate.objects.filter(
            Q(pk=template.pk), Q(total_limit__isnull=True) | Q(issued_count__lt=F("total_limit"))
        ).update(issued_count=F("issued_count") + 1)
        if not taken:
            raise CouponError(
                "coupon_sold_out", _("All coupons of this kind have been issued."), status=409
            )
        for _attempt in range(3):  # a 60-bit code colliding is unlikely, but not impossible
            try:
                with transaction.atomic():
                    coupon = Coupon.objects.create(
                        template=template,
                        member_id=member_id,
                        code=_code(),
                        source=source,
                        source_ref=source_ref,
                        issued_at=now,
                        valid_until=now + timedelta(days=template.valid_days),
                    )
                break
            except IntegrityError:
                continue
        else:  # pragma: no cover - three collisions in a row
            raise CouponError("coupon_code_collision", _("Try again."), status=409)
        _log(coupon, CouponStatus.ISSUED, now, actor, note or source)
        return coupon


def coupon_use(
    *, coupon_id: int, store_id: int | None = None, actor: Any = None, now: datetime | None = None
) -> Coupon:
    """Mark a coupon used (at a store when given: it must be one the coupon allows)."""
    now = now or timezone.now()
    with transaction.atomic():
        coupon = (
            Coupon.objects.select_for_update(of=("self",))
            .select_related("template")
            .filter(pk=coupon_id)
            .first()
        )
        if coupon is None:
            raise NotFound("coupon_not_found", _("No such coupon."))
        if coupon.status != CouponStatus.ISSUED:
            raise CouponError(
                "coupon_not_usable",
                _("This coupon is %(status)s.") % {"status": coupon.get_status_display()},
                status=409,
            )
        if coupon.valid_until <= now:
            raise CouponError("coupon_expired", _("This coupon has expired."), status=409)
        stores = set(coupon.template.stores.values_list("pk", flat=True))
        if store_id is not None and stores and store_id not in stores:
            raise CouponError("coupon_wrong_store", _("This coupon is not valid at this store."))
        coupon.status, coupon.used_at = CouponStatus.USED, now
        coupon.save(update_fields=["status", "used_at"])
        _log(coupon, CouponStatus.USED, now, actor)
        return coupon


def coupon_revoke(
    *, coupon_id: int, reason: str, actor: Any, now: datetime | None = None
) -> Coupon:
    reason = (reason or "").strip()
    if not reason:
        raise CouponError("coupon_reason_required", _("Say why the coupon is revoked."))
    now = now or timezone.now()
    with transaction.atomic():
        coupon = Coupon.objects.select_for_update().filter(pk=coupon_id).first()
        if coupon is None:
            raise NotFound("coupon_not_found", _("No such coupon."))
        if coupon.status != CouponStatus.ISSUED:
            raise CouponError(
                "coupon_not_revocable",
                _("Only an unused coupon can be revoked; this one is %(status)s.")
                % {"status": coupon.get_status_display()},
                status=409,
            )
        coupon.status = CouponStatus.REVOKED
        coupon.save(update_fields=["status"])
        _log(coupon, CouponStatus.REVOKED, now, actor, reason)
        if getattr(actor, "pk", None):  # staff revoked it (not a cancelled redemption)
            from scrm.core.services import audit_record

            audit_record(
                actor=actor, action="coupon.revoke", target=coupon, data={"reason": reason}
            )
        return coupon


def coupons_expire_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Coupon.objects.select_for_update(skip_locked=True)
            .filter(status=CouponStatus.ISSUED, valid_until__lte=now)
            .values_list("pk", flat=True)[:10_000]
        )
        Coupon.objects.filter(pk__in=ids).update(status=CouponStatus.EXPIRED)
        CouponLog.objects.bulk_create(
            [CouponLog(coupon_id=pk, action=CouponStatus.EXPIRED, at=now) for pk in ids]
        )
    return len(ids)


def birthday_coupons_issue(*, today: date | None = None) -> int:
    """Give each member whose birthday is today their tier's birthday gift, once a year.
    Members born on 29 February get theirs on the 28th in other years."""
    from members.services.tiers import tier_card

    today = today or timezone.localdate()
    days = [(today.month, today.day)]
    leap = today.year % 4 == 0 and (today.year % 100 != 0 or today.year % 400 == 0)
    if (today.month, today.day) == (2, 28) and not leap:
        days.append((2, 29))
    query = Q()
    for month, day in days:
        query |= Q(birthday__month=month, birthday__day=day)
    issued = 0
    for member_id in Member.objects.filter(query).values_list("pk", flat=True).iterator():
        tier = tier_card(member_id=member_id).tier
        if tier is None or tier.birthday_coupon_id is None:
            continue
        template = CouponTemplate.objects.get(pk=tier.birthday_coupon_id)
        if Coupon.objects.filter(
            source="birthday", source_ref=f"{member_id}:{today.year}"
        ).exists():
            continue  # this year's gift was given (a second run of the task)
        try:
            coupon_issue(
                template=template,
                member_id=member_id,
                source="birthday",
                source_ref=f"{member_id}:{today.year}",
                note=_("Birthday gift (%(tier)s)") % {"tier": tier.name},
            )
            issued += 1
        except CouponError:
            continue  # sold out or limit reached: the gift is skipped, not the others
    return issued
