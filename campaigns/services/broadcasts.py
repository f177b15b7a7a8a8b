"""A broadcast's life: drafted by an operator (or a store), submitted, approved by
someone else at head office, then planned and sent — at once, or when its time comes
(outside quiet hours). Cancelling stops what has not gone yet."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import (
    GUIDE_POSTED,
    Broadcast,
    BroadcastStatus,
    Delivery,
    DeliveryStatus,
    GuideSendTask,
    Material,
    MaterialKind,
)
from campaigns.services.content import content_check
from campaigns.services.planning import broadcast_plan, holdout_and_cost_check
from campaigns.services.sending import broadcast_dispatch
from members.models import Segment
from members.services.errors import Conflict, MemberError
from scrm.core.services import audit_record
from scrm.org.models import Store

# Marketing messages wait outside these local hours (22:00–08:00) until the morning.
QUIET_START = time(22, 0)
QUIET_END = time(8, 0)


def after_quiet_hours(moment: datetime) -> datetime:
    """`moment`, or the end of the quiet hours it falls in."""
    local = timezone.localtime(moment)
    if local.time() >= QUIET_START:
        return local.replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(days=1)
    if local.time() < QUIET_END:
        return local.replace(hour=8, minute=0, second=0, microsecond=0)
    return moment


@transaction.atomic
def broadcast_create(
    *,
    actor: Any,
    name: str,
    channel: str,
    segment: Segment | None,
    store: Store | None,
    material: Material | None = None,
    title: str = "",
    body: str = "",
    scheduled_at: datetime | None = None,
    holdout_percent: int = 0,
    cost: Decimal = Decimal("0"),
) -> Broadcast:
    """A draft broadcast of a library material, or of a text written for it (which
    becomes a text material of its store). Guide-posted channels take no control group:
    their audience is the guides."""
    holdout_and_cost_check(holdout_percent, cost)
    if channel in GUIDE_POSTED and holdout_percent:
        raise MemberError(
            "holdout_guide_posted",
            _(
                "Customer groups and Moments have no control group: guides post them for "
                "all their customers. Set it to 0."
            ),
        )
    if material is None:
        content_check(body)
        material = Material.objects.create(
            kind=MaterialKind.TEXT, title=title, body=body, store=store, created_by=actor
        )
    broadcast = Broadcast.objects.create(
        name=name,
        channel=channel,
        material=material,
        segment=segment,
        store=store,
        scheduled_at=scheduled_at,
        holdout_percent=holdout_percent,
        cost=cost,
        created_by=actor,
    )
    audit_record(actor=actor, action="broadcast.create", target=broadcast, data={})
    return broadcast


@transaction.atomic
def broadcast_submit(*, broadcast: Broadcast, actor: Any, now: datetime | None = None) -> Broadcast:
    now = now or timezone.now()
    locked = Broadcast.objects.select_for_update().select_related("material").get(pk=broadcast.pk)
    if locked.status != BroadcastStatus.DRAFT:
        raise Conflict("not_a_draft", _("Only a draft is submitted for approval."))
    content_check(locked.material.body)
    if locked.scheduled_at is not None and locked.scheduled_at < now:
        raise MemberError("schedule_in_past", _("The send time is in the past."))
    locked.status = BroadcastStatus.PENDING
    locked.save(update_fields=["status"])
    audit_record(actor=actor, action="broadcast.submit", target=locked, data={})
    return locked


@transaction.atomic
def broadcast_approve(
    *, broadcast: Broadcast, actor: Any, now: datetime | None = None
) -> Broadcast:
    """Head office approves someone else's broadcast; one due now is planned and handed
    to the senders when this commits."""
    now = now or timezone.now()
    locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
    if locked.status != BroadcastStatus.PENDING:
        raise Conflict("not_pending", _("This broadcast is not waiting for approval."))
    if locked.created_by_id == getattr(actor, "pk", None):
        raise MemberError(
            "own_broadcast",
            _("Someone else approves a broadcast: you drafted this one."),
            status=403,
        )
    if not getattr(actor, "is_hq", False):
        raise MemberError(
            "not_an_approver", _("Broadcasts are approved by head office."), status=403
        )
    if locked.scheduled_at is not None and locked.scheduled_at < now - timedelta(minutes=5):
        raise MemberError("schedule_in_past", _("The send time is in the past."))
    locked.status = BroadcastStatus.APPROVED
    locked.approved_by = actor
    locked.save(update_fields=["status", "approved_by"])
    audit_record(actor=actor, action="broadcast.approve", target=locked, data={})
    if after_quiet_hours(locked.scheduled_at or now) <= now:
        broadcast_plan(broadcast=locked, now=now)
        broadcast_dispatch(broadcast_id=locked.pk)
    return locked


def broadcasts_start_due(*, now: datetime | None = None) -> int:
    """Beat, every minute: plan and send approved broadcasts whose time (moved past the
    quiet hours) has come."""
    now = now or timezone.now()
    started = 0
    for broadcast in Broadcast.objects.filter(status=BroadcastStatus.APPROVED):
        if after_quiet_hours(broadcast.scheduled_at or now) > now:
            continue
        with transaction.atomic():
            try:
                broadcast_plan(broadcast=broadcast, now=now)
            except MemberError:
                Broadcast.objects.filter(pk=broadcast.pk).update(status=BroadcastStatus.CANCELLED)
                continue
            broadcast_dispatch(broadcast_id=broadcast.pk)
        started += 1
    return started


@transaction.atomic
def broadcast_cancel(*, broadcast: Broadcast, actor: Any) -> int:
    """Stop a broadcast: deliveries not yet sent are withdrawn (a chunk in flight
    finishes the rows it holds). Returns how many were withdrawn."""
    locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
    if locked.status in (BroadcastStatus.DONE, BroadcastStatus.CANCELLED):
        raise Conflict("finished", _("This broadcast is already finished."))
    locked.status = BroadcastStatus.CANCELLED
    locked.save(update_fields=["status"])
    withdrawn = Delivery.objects.filter(broadcast=locked, status=DeliveryStatus.PLANNED).update(
        status=DeliveryStatus.SUPPRESSED, reason="cancelled"
    )
    audit_record(
        actor=actor, action="broadcast.cancel", target=locked, data={"withdrawn": withdrawn}
    )
    return withdrawn


@transaction.atomic
def guide_task_confirm(*, task_id: int, user: Any, now: datetime | None = None) -> GuideSendTask:
    """A guide confirms they sent the group message in WeCom. Only their own task; a
    second confirmation is refused (the first time stays the record)."""
    task = GuideSendTask.objects.select_for_update().filter(pk=task_id, guide_id=user.pk).first()
    if task is None:
        raise MemberError("not_found", _("No such group message task."), status=404)
    if task.confirmed_at is not None:
        raise Conflict("already_confirmed", _("This group message was already confirmed."))
    task.confirmed_at = now or timezone.now()
    task.save(update_fields=["confirmed_at"])
    audit_record(actor=user, action="broadcast.guide_confirm", target=task.broadcast, data={})
    return task
