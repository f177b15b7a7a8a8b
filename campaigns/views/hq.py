"""/hq/broadcasts/: compose a broadcast, see its audience after suppression, submit it,
approve someone else's (head office), follow its deliveries, cancel it."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from campaigns.forms import BroadcastForm
from campaigns.models import (
    GUIDE_POSTED,
    Broadcast,
    BroadcastStatus,
    GuideSendTask,
    SuppressionReason,
)
from campaigns.selectors import conversions_summary
from campaigns.services.broadcasts import (
    broadcast_approve,
    broadcast_cancel,
    broadcast_create,
    broadcast_submit,
)
from campaigns.services.planning import broadcast_preview
from members.services.errors import MemberError
from scrm.core.access import hq_required
from scrm.core.exports import table_download, wanted_format, wanted_table


def _broadcast(request: HttpRequest, pk: int) -> Broadcast:
    broadcast: Broadcast | None = (
        Broadcast.objects.for_user(request.user)
        .select_related("material", "segment", "store", "created_by", "approved_by")
        .filter(pk=pk)
        .first()
    )
    if broadcast is None:
        raise Http404
    return broadcast


@hq_required
def broadcast_list(request: HttpRequest) -> HttpResponse:
    broadcasts: Any = (
        Broadcast.objects.for_user(request.user)
        .filter(journey_step__isnull=True)  # journeys' waves show on their campaign's page
        .select_related("segment", "store", "created_by")
        .annotate(
            sent=Count("deliveries", filter=Q(deliveries__status="sent")),
            planned=Count("deliveries", filter=Q(deliveries__status="planned")),
        )
        .order_by("-created_at", "-pk")
    )
    status = request.GET.get("status", "")
    if status in BroadcastStatus.values:
        broadcasts = broadcasts.filter(status=status)
    file_format = wanted_format(request)
    if file_format:
        return table_download(
            file_format=file_format,
            filename="broadcasts",
            header=[
                _("Name"),
                _("Channel"),
                _("Audience"),
                _("Store"),
                _("Status"),
                _("Sent"),
                _("Waiting"),
                _("By"),
                _("Created"),
            ],
            rows=(
                [
                    b.name,
                    b.get_channel_display(),
                    b.segment or "",
                    b.store or _("Head office"),
                    b.get_status_display(),
                    b.sent,
                    b.planned,
                    b.created_by,
                    b.created_at,
                ]
                for b in broadcasts.iterator(chunk_size=500)
            ),
        )
    page = Paginator(broadcasts, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/hq/broadcast_list.html",
        {"page": page, "status": status, "statuses": BroadcastStatus.choices},
    )


@hq_required
@require_http_methods(["GET", "POST"])
def broadcast_new(request: HttpRequest) -> HttpResponse:
    form = BroadcastForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            broadcast = broadcast_create(
                actor=request.user,
                name=data["name"],
                channel=data["channel"],
                segment=data["segment"],
                store=data["store"],
                material=data["material"],
                title=data["title"],
                body=data["body"],
                scheduled_at=data["scheduled_at"],
                holdout_percent=data["holdout_percent"],
                cost=data["cost"],
            )
        except MemberError as exc:
            form.add_error(None, str(exc.message))
        else:
            messages.success(request, _("Draft saved: check the audience, then submit it."))
            return redirect("hq:broadcast", pk=broadcast.pk)
    return render(request, "campaigns/hq/broadcast_new.html", {"form": form})


def _guide_tasks(request: HttpRequest, broadcast: Broadcast) -> list[GuideSendTask]:
    return list(
        GuideSendTask.objects.for_user(request.user)
        .filter(broadcast=broadcast)
        .select_related("guide")
        .order_by("guide__username")
    )


@hq_required
def broadcast_detail(request: HttpRequest, pk: int) -> HttpResponse:
    broadcast = _broadcast(request, pk)
    if file_format := wanted_format(request):
        if wanted_table(request) != "guide-tasks":
            raise Http404
        return table_download(
            file_format=file_format,
            filename=f"broadcast-{broadcast.pk}-guides",
            header=[_("Guide"), _("Customers"), _("Sent in WeCom")],
            rows=(
                [str(task.guide), task.recipients, task.confirmed_at or _("Not yet")]
                for task in _guide_tasks(request, broadcast)
            ),
        )
    counts = dict(
        broadcast.deliveries.values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    # Each reason as the user reads it, not its stored code.
    reasons = {
        SuppressionReason(reason).label if reason in SuppressionReason.values else reason: n
        for reason, n in broadcast.deliveries.filter(status="suppressed")
        .values_list("reason")
        .annotate(n=Count("pk"))
        .values_list("reason", "n")
        .order_by("reason")
    }
    preview = None
    if broadcast.status in (
        BroadcastStatus.DRAFT,
        BroadcastStatus.PENDING,
        BroadcastStatus.APPROVED,
    ):
        preview = broadcast_preview(broadcast=broadcast)
    user: Any = request.user
    guide_tasks = _guide_tasks(request, broadcast)
    return render(
        request,
        "campaigns/hq/broadcast_detail.html",
        {
            "broadcast": broadcast,
            "guide_tasks": guide_tasks,
            # What it sold: orders it converted, net of refunds.
            "converted": conversions_summary(broadcast=broadcast),
            # Planned guide posts exist before WeCom has them: count only those handed.
            "guides_handed": sum(1 for task in guide_tasks if task.handed_at is not None),
            "guide_posted": broadcast.channel in GUIDE_POSTED,
            "preview": preview,
            "counts": counts,
            "reasons": reasons,
            "can_approve": broadcast.status == BroadcastStatus.PENDING
            and getattr(user, "is_hq", False)
            and broadcast.created_by_id != user.pk,
        },
    )


@hq_required
@require_POST
def broadcast_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    broadcast = _broadcast(request, pk)
    actions = {
        "submit": (broadcast_submit, _("Submitted for approval.")),
        "approve": (broadcast_approve, _("Approved.")),
        "cancel": (broadcast_cancel, _("Cancelled: nothing more will be sent.")),
    }
    if action not in actions:
        raise Http404
    service, done = actions[action]
    try:
        service(broadcast=broadcast, actor=request.user)  # type: ignore[operator]
    except MemberError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, done)
    return redirect("hq:broadcast", pk=broadcast.pk)
