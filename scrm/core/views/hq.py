from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from scrm.core import selectors, services
from scrm.core.access import hq_required
from scrm.core.board import board_for, panels_for
from scrm.core.exports import table_download, wanted_format
from scrm.core.health import check_all


@hq_required
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "hq/home.html",
        {"board": board_for(request.user), "panels": panels_for(request.user)},
    )


@hq_required
def system_status(request: HttpRequest) -> HttpResponse:
    if file_format := wanted_format(request):
        # Every ping (the page shows the latest 10), without checking the services.
        return table_download(
            file_format=file_format,
            filename="worker-pings",
            header=["#", _("Requested"), _("By"), _("Status"), _("Worker")],
            rows=(
                [
                    ping.pk,
                    ping.requested_at,
                    str(ping.requested_by or ""),
                    _("done in %(s)s s") % {"s": f"{ping.round_trip_seconds:.2f}"}
                    if ping.round_trip_seconds is not None
                    else _("waiting for a worker"),
                    ping.worker_hostname,
                ]
                for ping in selectors.worker_ping_list(limit=None)
            ),
        )
    healthy, report = check_all()
    context = {"healthy": healthy, "report": report, "pings": selectors.worker_ping_list()}
    template = "hq/_pings.html" if request.htmx else "hq/system.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@hq_required
@require_POST
def worker_ping(request: HttpRequest) -> HttpResponse:
    ping = services.worker_ping_request(actor=request.user)
    messages.info(request, _("Ping #%(id)s sent to the workers.") % {"id": ping.pk})
    return redirect("hq:system")


@hq_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    """Mark the signed-in person's notifications read (theirs only)."""
    services.notifications_mark_read(recipient=request.user)
    return redirect("hq:home")
