"""/hq/touchpoints/: channels and the touchpoints inside them, channel QR codes (their
guides, tags, welcome message, validity and downloadable image), and event clients."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from members.services.errors import MemberError
from members.views.downloads import over_the_cap
from scrm.core.access import head_office_required, hq_required
from scrm.core.exports import table_download, wanted_format, wanted_table
from scrm.org.models import Staff
from touchpoints.forms import (
    ChannelForm,
    EventClientForm,
    QrCodeForm,
    RotationFormSet,
    TouchpointForm,
)
from touchpoints.models import (
    BehaviourEvent,
    Channel,
    EventClient,
    QrCode,
    QrCodeGuide,
    QrGuideDay,
    Touchpoint,
    TouchpointDay,
)
from touchpoints.services.channels import (
    channel_save,
    event_client_create,
    event_client_switch_off,
    qr_code_save,
    touchpoint_save,
)

head_office_only = head_office_required(
    gettext_lazy("Channels and event clients are managed by head-office staff.")
)
PAGE_SIZE = 50


def _touchpoint(request: HttpRequest, pk: int) -> Touchpoint:
    touchpoint: Touchpoint | None = (
        Touchpoint.objects.for_user(request.user)
        .select_related("channel", "store", "responsible")
        .filter(pk=pk)
        .first()
    )
    if touchpoint is None:
        raise Http404
    return touchpoint


def _rotation_guides(request: HttpRequest, touchpoint: Touchpoint) -> QuerySet[Staff]:
    guides = Staff.objects.for_user(request.user).guides()
    if touchpoint.store_id is not None:
        guides = guides.filter(stores=touchpoint.store_id)
    return guides.order_by("username")


@hq_required
def touchpoint_list(request: HttpRequest) -> HttpResponse:
    since = timezone.localdate() - timedelta(days=6)
    contacts = (
        TouchpointDay.objects.filter(touchpoint=OuterRef("pk"), day__gte=since)
        .values("touchpoint")
        .annotate(n=Sum("new_contacts"))
        .values("n")
    )
    touchpoints: QuerySet[Any] = (
        Touchpoint.objects.for_user(request.user)
        .select_related("channel", "store")
        .annotate(contacts_7d=Coalesce(Subquery(contacts), 0))
        .order_by("channel__kind", "channel__name", "name")
    )
    search = request.GET.get("q", "").strip()[:50]
    if search:
        touchpoints = touchpoints.filter(Q(name__icontains=search) | Q(code__icontains=search))
    if file_format := wanted_format(request):
        return table_download(
            file_format=file_format,
            filename="touchpoints",
            header=[_("Touchpoint"), capfirst(_("code")), _("Kind"), _("Channel"), _("Store")]
            + [_("New contacts, last 7 days"), _("Status")],
            rows=(
                [
                    tp.name,
                    tp.code,
                    tp.get_kind_display(),
                    tp.channel.name,
                    tp.store.name if tp.store else _("Head office"),
                    tp.contacts_7d,
                    _("Active") if tp.active else _("Off"),
                ]
                for tp in touchpoints
            ),
        )
    page = Paginator(touchpoints, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "touchpoints/hq/touchpoint_list.html",
        {"page": page, "search": search, "channels": Channel.objects.all()},
    )


@hq_required
@require_http_methods(["GET", "POST"])
def touchpoint_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    touchpoint = _touchpoint(request, pk) if pk is not None else None
    form = TouchpointForm(request.POST or None, instance=touchpoint, user=request.user)
    if request.method == "POST" and form.is_valid():
        saved = touchpoint_save(form=form, actor=request.user)
        messages.success(request, _("Saved “%(name)s”.") % {"name": saved})
        return redirect("hq:touchpoint", pk=saved.pk)
    return render(
        request, "touchpoints/hq/touchpoint_edit.html", {"form": form, "touchpoint": touchpoint}
    )


@hq_required
def touchpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    touchpoint = _touchpoint(request, pk)
    qr = QrCode.objects.filter(touchpoint=touchpoint).prefetch_related("tags").first()
    rotation: list[Any] = []
    if qr is not None:
        today = dict(
            QrGuideDay.objects.filter(qr_code=qr, day=timezone.localdate()).values_list(
                "guide_id", "count"
            )
        )
        rotation = [
            {"slot": slot, "today": today.get(slot.guide_id, 0)}
            for slot in QrCodeGuide.objects.filter(qr_code=qr).select_related("guide")
        ]
    events: Any = (
        BehaviourEvent.objects.for_user(request.user)
        .filter(touchpoint=touchpoint)
        .select_related("member")
        .order_by("-occurred_at", "-pk")
    )
    if file_format := wanted_format(request):
        if wanted_table(request) == "rotation":
            if qr is None:
                raise Http404
            return table_download(
                file_format=file_format,
                filename=f"touchpoint-{touchpoint.pk}-rotation",
                header=["#", _("Guide"), _("Daily cap"), _("Customers today")]
                + [capfirst(_("next in rotation"))],
                rows=(
                    [
                        n,
                        str(row["slot"].guide),
                        row["slot"].daily_cap or _("no cap"),
                        row["today"],
                        n - 1 == qr.next_position,
                    ]
                    for n, row in enumerate(rotation, start=1)
                ),
            )
        # Every event in the viewer's scope (the page shows the latest 20).
        if refused := over_the_cap(
            request,
            events.count(),
            too_many=_("%(count)s events: downloads hold at most %(limit)s."),
            back=reverse("hq:touchpoint", args=[touchpoint.pk]),
        ):
            return refused
        return table_download(
            file_format=file_format,
            filename=f"touchpoint-{touchpoint.pk}-events",
            header=[_("When"), _("Event"), _("Member")],
            rows=(
                [event.occurred_at, event.get_type_display(), str(event.member)]
                for event in events.iterator(chunk_size=2000)
            ),
        )
    return render(
        request,
        "touchpoints/hq/touchpoint_detail.html",
        {
            "touchpoint": touchpoint,
            "qr": qr,
            "qr_url": qr_landing_url(qr) if qr else "",
            "rotation": rotation,
            "events": events[:20],
        },
    )


def qr_landing_url(qr: QrCode) -> str:
    return f"{settings.SCRM_PUBLIC_URL.rstrip('/')}{reverse('qr-landing', args=[qr.token])}"


@hq_required
@require_http_methods(["GET", "POST"])
def qr_code_edit(request: HttpRequest, pk: int) -> HttpResponse:
    touchpoint = _touchpoint(request, pk)
    qr = QrCode.objects.filter(touchpoint=touchpoint).first()
    if qr is None:
        raise Http404
    guides = _rotation_guides(request, touchpoint)
    form = QrCodeForm(request.POST or None, instance=qr, guides=guides)
    initial = [
        {"guide": slot.guide_id, "daily_cap": slot.daily_cap}
        for slot in QrCodeGuide.objects.filter(qr_code=qr)
    ]
    formset = RotationFormSet(
        request.POST or None,
        initial=initial + [{}, {}, {}],
        form_kwargs={"guides": guides},
        prefix="rotation",
    )
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        rotation = [
            (row["guide"], row.get("daily_cap"))
            for row in formset.cleaned_data
            if row and row.get("guide") is not None
        ]
        try:
            qr_code_save(qr=qr, form=form, rotation=rotation, actor=request.user)
        except MemberError as exc:
            messages.error(request, str(exc.message))
        else:
            messages.success(request, _("QR code saved."))
            return redirect("hq:touchpoint", pk=touchpoint.pk)
    return render(
        request,
        "touchpoints/hq/qr_edit.html",
        {"touchpoint": touchpoint, "form": form, "formset": formset},
    )


@hq_required
def qr_code_image(request: HttpRequest, pk: int, file_format: str) -> HttpResponse:
    """The QR image, generated here (no outside service), to print or put online."""
    touchpoint = _touchpoint(request, pk)
    qr = QrCode.objects.filter(touchpoint=touchpoint).first()
    if qr is None or file_format not in ("png", "svg"):
        raise Http404
    code = segno.make(qr_landing_url(qr), error="m")
    from io import BytesIO

    buffer = BytesIO()
    if file_format == "png":
        code.save(buffer, kind="png", scale=10, border=4)
        content_type = "image/png"
    else:
        code.save(buffer, kind="svg", scale=10, border=4, xmldecl=False)
        content_type = "image/svg+xml"
    response = HttpResponse(buffer.getvalue(), content_type=content_type)
    if request.GET.get("download"):
        response["Content-Disposition"] = (
            f'attachment; filename="qr-{touchpoint.code}.{file_format}"'
        )
    return response


def qr_landing(request: HttpRequest, token: str) -> HttpResponse:
    """Where a printed code leads: the touchpoint's welcome, while the code is valid."""
    qr = QrCode.objects.select_related("touchpoint").filter(token=token).first()
    if qr is None:
        raise Http404
    valid = qr.is_valid()
    return render(
        request,
        "touchpoints/qr_landing.html",
        {"qr": qr, "valid": valid},
        status=200 if valid else 410,
    )


@head_office_only
@require_http_methods(["GET", "POST"])
def channel_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    channel = Channel.objects.filter(pk=pk).first() if pk is not None else None
    if pk is not None and channel is None:
        raise Http404
    form = ChannelForm(request.POST or None, instance=channel)
    if request.method == "POST" and form.is_valid():
        saved = channel_save(form=form, actor=request.user)
        messages.success(request, _("Saved “%(name)s”.") % {"name": saved})
        return redirect("hq:touchpoints")
    return render(request, "touchpoints/hq/channel_edit.html", {"form": form, "channel": channel})


@head_office_only
@require_http_methods(["GET", "POST"])
def event_clients(request: HttpRequest) -> HttpResponse:
    form = EventClientForm(request.POST or None)
    new_key = ""
    if request.method == "POST" and form.is_valid():
        try:
            client, new_key = event_client_create(
                name=form.cleaned_data["name"],
                channel=form.cleaned_data["channel"],
                actor=request.user,
            )
        except MemberError as exc:
            form.add_error("name", str(exc.message))
        else:
            messages.success(request, _("Created “%(name)s”.") % {"name": client})
            form = EventClientForm()
    clients = EventClient.objects.select_related("channel").order_by("name")
    if request.method == "GET" and (file_format := wanted_format(request)):
        return table_download(
            file_format=file_format,
            filename="event-clients",
            header=[_("Name"), _("Channel"), _("Key ends with"), _("Status")],
            rows=(
                [c.name, str(c.channel), f"…{c.key_hint}", _("Active") if c.active else _("Off")]
                for c in clients
            ),
        )
    return render(
        request,
        "touchpoints/hq/event_clients.html",
        {"form": form, "new_key": new_key, "clients": clients},
    )


@head_office_only
@require_POST
def event_client_off(request: HttpRequest, pk: int) -> HttpResponse:
    client = EventClient.objects.filter(pk=pk, active=True).first()
    if client is None:
        raise Http404
    event_client_switch_off(client=client, actor=request.user)
    messages.success(request, _("“%(name)s” can no longer post events.") % {"name": client})
    return redirect("hq:event-clients")
