"""/hq/campaigns/: campaigns from templates with automated journeys — list with their
figures, new from a template (prefilled, editable), detail with per-step figures and
members, and activate (head office) / pause / end; editing a draft's settings and steps
(a paused campaign's settings only; active and ended campaigns are read-only). Scoped by
`for_user`: another store's campaign is a 404."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_http_methods, require_POST

from campaigns.forms_journeys import (
    CampaignForm,
    StepEditForm,
    StepFormSet,
    campaign_initial,
    step_initial,
    step_specs,
    template_initial,
)
from campaigns.journey_templates import TEMPLATES
from campaigns.models import (
    Campaign,
    CampaignStatus,
    JourneyEnrollment,
    SuppressionReason,
)
from campaigns.selectors import conversions_summary
from campaigns.services.journeys import (
    campaign_activate,
    campaign_create,
    campaign_end,
    campaign_pause,
    campaign_profiling_figures,
    campaign_step_figures,
    campaign_steps_edit,
    campaign_update,
    campaigns_for_user,
)
from members.services.errors import MemberError
from members.views.downloads import over_the_cap
from scrm.core.access import hq_required
from scrm.core.exports import table_download, wanted_format, wanted_table
from scrm.core.params import positive_int


def _campaign(request: HttpRequest, pk: int) -> Campaign:
    campaign: Campaign | None = (
        Campaign.objects.for_user(request.user)
        .select_related("segment", "store", "created_by", "activated_by", "exit_tag")
        .filter(pk=pk)
        .first()
    )
    if campaign is None:
        raise Http404
    return campaign


@hq_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns: Any = campaigns_for_user(request.user)
    status = request.GET.get("status", "")
    if status in CampaignStatus.values:
        campaigns = campaigns.filter(status=status)
    file_format = wanted_format(request)
    if file_format:
        return table_download(
            file_format=file_format,
            filename="campaigns",
            header=[
                _("Name"),
                _("Trigger"),
                _("Store"),
                _("Status"),
                _("Starts"),
                _("Ends"),
                _("Entered"),
                _("On the journey"),
                _("Completed"),
                pgettext("journey", "Left"),
                _("Sent"),
            ],
            rows=(
                [
                    c.name,
                    c.get_trigger_display(),
                    c.store or _("Head office"),
                    c.get_status_display(),
                    c.starts_at,
                    c.ends_at,
                    c.enrolled,
                    c.active,
                    c.completed,
                    c.exited,
                    c.sent or 0,
                ]
                for c in campaigns.iterator(chunk_size=500)
            ),
        )
    page = Paginator(campaigns, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/hq/journey_list.html",
        {"page": page, "status": status, "statuses": CampaignStatus.choices},
    )


@hq_required
@require_http_methods(["GET", "POST"])
def campaign_new(request: HttpRequest) -> HttpResponse:
    key = request.POST.get("template") or request.GET.get("template", "")
    if not key:
        return render(request, "campaigns/hq/journey_templates.html", {"templates": TEMPLATES})
    if key not in TEMPLATES:
        messages.error(request, _("Unknown campaign template."))
        return render(
            request,
            "campaigns/hq/journey_templates.html",
            {"templates": TEMPLATES},
            status=400,
        )
    user: Any = request.user
    initial, step_initial = template_initial(key)
    if request.method == "POST":
        form = CampaignForm(request.POST, user=user)
        steps = StepFormSet(request.POST, prefix="steps", form_kwargs={"user": user})
        if form.is_valid() and steps.is_valid():
            data = form.cleaned_data
            try:
                campaign = campaign_create(
                    actor=user,
                    template_key=key,
                    name=data["name"],
                    goal=data["goal"],
                    segment=data["segment"],
                    store=data["store"],
                    starts_at=data["starts_at"],
                    ends_at=data["ends_at"],
                    trigger=data["trigger"],
                    trigger_params=form.trigger_params(),
                    exit_on_conversion=data["exit_on_conversion"],
                    exit_tag=data["exit_tag"],
                    steps=step_specs(steps),
                    holdout_percent=data["holdout_percent"],
                    cost=data["cost"],
                )
            except MemberError as exc:
                form.add_error(None, str(exc.message))
            else:
                messages.success(request, _("Draft saved: head office activates it."))
                return redirect("hq:campaign", pk=campaign.pk)
        status = 400
    else:
        form = CampaignForm(initial=initial, user=user)
        steps = StepFormSet(initial=step_initial, prefix="steps", form_kwargs={"user": user})
        status = 200
    return render(
        request,
        "campaigns/hq/journey_new.html",
        {"form": form, "steps": steps, "template": TEMPLATES[key], "key": key},
        status=status,
    )


@hq_required
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign(request, pk)
    enrollments = (
        JourneyEnrollment.objects.filter(campaign=campaign)
        .select_related("member")
        .order_by("-entered_at", "-id")
    )
    file_format = wanted_format(request)
    if file_format and wanted_table(request) == "steps":
        return _steps_download(campaign, file_format)
    if file_format:
        # Every member who entered (the page shows 50 at a time), as the page shows them.
        if refused := over_the_cap(
            request,
            enrollments.count(),
            too_many=_("%(count)s members entered: downloads hold at most %(limit)s."),
            back=reverse("hq:campaign", args=[campaign.pk]),
        ):
            return refused
        return table_download(
            file_format=file_format,
            filename=f"campaign-{campaign.pk}-members",
            header=[_("Member"), _("State"), _("Step"), _("Entered"), _("Next step at")]
            + [_("Finished")],
            rows=(
                [
                    str(e.member),
                    e.get_state_display()
                    + (f" · {e.get_exit_reason_display()}" if e.exit_reason else ""),
                    e.position,
                    e.entered_at,
                    e.next_run_at,
                    e.finished_at,
                ]
                for e in enrollments.iterator(chunk_size=2000)
            ),
        )
    page = Paginator(enrollments, 50).get_page(request.GET.get("page"))
    user: Any = request.user
    return render(
        request,
        "campaigns/hq/journey_detail.html",
        {
            "campaign": campaign,
            "figures": campaign_step_figures(campaign),
            "profiling": campaign_profiling_figures(campaign),
            # What its messages sold (last touch within the attribution window).
            "converted": conversions_summary(campaign=campaign),
            "reasons": dict(SuppressionReason.choices),
            "page": page,
            "can_activate": getattr(user, "is_hq", False)
            and campaign.status in (CampaignStatus.DRAFT, CampaignStatus.PAUSED),
            "can_edit": campaign.status in (CampaignStatus.DRAFT, CampaignStatus.PAUSED),
        },
    )


def _steps_download(campaign: Campaign, file_format: str) -> HttpResponse:
    reasons = dict(SuppressionReason.choices)

    def describe(step: Any) -> str:
        text = str(step.get_kind_display())
        if step.kind == "send":
            return f"{text}: {step.get_channel_display()} · {step.material.title}"
        if step.kind == "wait":
            return f"{text}: {step.wait_hours} h"
        if step.kind == "branch":
            return f"{text}: {step.get_condition_display()} {step.tag or ''}".rstrip()
        return text

    return table_download(
        file_format=file_format,
        filename=f"campaign-{campaign.pk}-steps",
        header=[
            "#",
            _("Step"),
            _("Entered"),
            _("Sent"),
            _("Waiting"),
            _("Control group"),
            _("Not sent"),
            _("Bought after"),
        ],
        rows=(
            [
                f.step.position,
                describe(f.step),
                f.entered,
                f.sent,
                f.waiting,
                f.held_out,
                " · ".join(
                    f"{n} {reasons.get(reason, reason)}" for reason, n in f.suppressed.items()
                ),
                f.converted,
            ]
            for f in campaign_step_figures(campaign)
        ),
    )


@hq_required
@require_POST
def campaign_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    campaign = _campaign(request, pk)
    actions = {
        "activate": (campaign_activate, _("Active: members enter when the trigger fires.")),
        "pause": (campaign_pause, _("Paused: nobody enters or moves on.")),
        "end": (campaign_end, _("Ended: every member left the journey.")),
    }
    if action not in actions:
        raise Http404
    service, done = actions[action]
    try:
        service(campaign=campaign, actor=request.user)  # type: ignore[operator]
    except MemberError as exc:
        messages.error(request, str(exc.message))
        return redirect("hq:campaign", pk=campaign.pk)
    messages.success(request, done)
    return redirect("hq:campaign", pk=campaign.pk)


# --- editing ------------------------------------------------------------------------------------


def _edit_page(
    request: HttpRequest,
    campaign: Campaign,
    *,
    form: CampaignForm | None = None,
    add_form: StepEditForm | None = None,
    change_form: StepEditForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    user: Any = request.user
    paused = campaign.status == CampaignStatus.PAUSED
    if form is None:
        form = CampaignForm(initial=campaign_initial(campaign), user=user)
    if paused:
        form.fields["store"].disabled = True
    steps = list(campaign.steps.select_related("material", "tag__group").order_by("position"))
    if change_form is None and campaign.status == CampaignStatus.DRAFT:
        wanted = positive_int(request.GET.get("step"))
        step = next((s for s in steps if s.position == wanted), None)
        if step is not None:
            change_form = StepEditForm(initial=step_initial(step), user=user, change=True)
    return render(
        request,
        "campaigns/hq/journey_edit.html",
        {
            "campaign": campaign,
            "form": form,
            "steps": steps,
            "add_form": add_form or StepEditForm(user=user),
            "change_form": change_form,
            "error": error,
            "settings_editable": campaign.status in (CampaignStatus.DRAFT, CampaignStatus.PAUSED),
            "steps_editable": campaign.status == CampaignStatus.DRAFT,
        },
        status=status,
    )


@hq_required
@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """The edit page (GET) and saving the settings (POST)."""
    campaign = _campaign(request, pk)
    if request.method == "GET":
        return _edit_page(request, campaign)
    user: Any = request.user
    form = CampaignForm(request.POST, initial=campaign_initial(campaign), user=user)
    if campaign.status == CampaignStatus.PAUSED:
        form.fields["store"].disabled = True
    if not form.is_valid():
        return _edit_page(request, campaign, form=form, status=400)
    data = form.cleaned_data
    try:
        campaign_update(
            campaign=campaign,
            actor=user,
            name=data["name"],
            goal=data["goal"],
            segment=data["segment"],
            store=data["store"],
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            trigger=data["trigger"],
            trigger_params=form.trigger_params(),
            exit_on_conversion=data["exit_on_conversion"],
            exit_tag=data["exit_tag"],
            holdout_percent=data["holdout_percent"],
            cost=data["cost"],
        )
    except MemberError as exc:
        form.add_error(None, str(exc.message))
        return _edit_page(request, campaign, form=form, status=exc.status)
    messages.success(request, _("Settings saved."))
    return redirect("hq:campaign-edit", pk=campaign.pk)


@hq_required
@require_POST
def campaign_steps(request: HttpRequest, pk: int) -> HttpResponse:
    """One change to the steps: op = add, change, remove, up or down."""
    campaign = _campaign(request, pk)
    user: Any = request.user
    op = request.POST.get("op", "")
    add_form = change_form = None
    step = None
    position = positive_int(request.POST.get("position"))
    if op in ("add", "change"):
        step_form = StepEditForm(request.POST, user=user, change=op == "change")
        if op == "add":
            add_form = step_form
        else:
            change_form = step_form
        if not step_form.is_valid():
            return _edit_page(
                request,
                campaign,
                add_form=add_form,
                change_form=change_form,
                error=_("Check the step's fields."),
                status=400,
            )
        step = step_form.spec()
        position = step_form.cleaned_data.get("position")
    try:
        edited = campaign_steps_edit(
            campaign=campaign, actor=user, op=op, position=position, step=step
        )
    except MemberError as exc:
        return _edit_page(
            request,
            campaign,
            add_form=add_form,
            change_form=change_form,
            error=str(exc.message),
            status=exc.status,
        )
    done = {
        "add": _("Step added."),
        "change": _("Step changed."),
        "remove": _("Step removed."),
        "up": _("Step moved up."),
        "down": _("Step moved down."),
    }
    messages.success(request, done[op])
    for n, path in edited.ended:
        text = (
            _("Step %(n)s: its “yes” step was removed, so that path now ends the journey.")
            if path == "yes"
            else _("Step %(n)s: its “no” step was removed, so that path now ends the journey.")
        )
        messages.warning(request, text % {"n": n})
    return redirect("hq:campaign-edit", pk=campaign.pk)
