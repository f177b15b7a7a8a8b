"""Consent decisions outside the mini-program: guide-assisted on /m/ (only for the
guide's own customers: anyone else's is a 404 and nothing is written), recorded by head
office or a store manager on the member profile (scoped the same way), and the
unsubscribe link of a message (/u/<token>, no login: the signed token is the proof)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from campaigns.forms_consent import HQ_CHANNELS, GuideConsentForm, HqConsentForm
from campaigns.models import ConsentPurpose, ConsentSource, GatewayKind
from campaigns.selectors.consent import consent_states
from campaigns.services.consent import (
    WORDING,
    consent_record,
    unsubscribe,
    unsubscribe_target,
)
from members.models import Member
from members.selectors import guides as guide_selectors
from members.services.errors import MemberError
from scrm.core.access import hq_required, mobile_required


def _customer(request: HttpRequest, member_id: int) -> Member:
    member = guide_selectors.customer_for_user(user=request.user, member_id=member_id)
    if member is None:
        raise Http404
    return member


@mobile_required
def customer_consents(request: HttpRequest, member_id: int) -> HttpResponse:
    """The customer's consent per purpose, each with a button to record the other
    decision: on the customer card (htmx), or as a page of its own."""
    member = _customer(request, member_id)
    context = {
        "member": member,
        "states": consent_states(member=member),
        "form": GuideConsentForm(),
        "tab": "customers",
    }
    if getattr(request, "htmx", False):
        return render(request, "campaigns/mobile/_consents.html", context)
    context["tasks_due"] = guide_selectors.task_list(user=request.user).count()
    return render(request, "campaigns/mobile/consents.html", context)


@mobile_required
@require_POST
def customer_consent_record(request: HttpRequest, member_id: int) -> HttpResponse:
    member = _customer(request, member_id)
    back = reverse("mobile:customer", args=[member.pk]) + "#consent"
    form = GuideConsentForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errs in form.errors.values() for e in errs))
        return redirect(back)
    purpose = ConsentPurpose(form.cleaned_data["purpose"])
    try:
        consent_record(
            member=member,
            purpose=purpose,
            granted=form.cleaned_data["granted"],
            source=ConsentSource.GUIDE,
            channel=form.cleaned_data["channel"],
            assisted_by=request.user,  # type: ignore[arg-type]
        )
    except MemberError as exc:
        messages.error(request, str(exc.message))
    else:
        if form.cleaned_data["granted"]:
            text = _("Consent recorded: %(purpose)s.")
        else:
            text = _("Withdrawal recorded: %(purpose)s.")
        messages.success(request, text % {"purpose": purpose.label})
    return redirect(back)


@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks to confirm; POST withdraws marketing on the link's channel. A forged or
    tampered link is a 404 and writes nothing."""
    target = unsubscribe_target(token)
    if target is None:
        return render(request, "campaigns/link_not_found.html", status=404)
    _member, channel = target
    done = False
    if request.method == "POST":
        try:
            unsubscribe(token=token)
        except MemberError:  # the member went away between the two reads
            return render(request, "campaigns/link_not_found.html", status=404)
        done = True
    response = render(
        request,
        "campaigns/unsubscribe.html",
        {"channel": GatewayKind(channel).label, "done": done},
    )
    # The token stays ours (never sent to another site as a referrer), but not
    # "no-referrer": under it browsers send `Origin: null` with the confirming POST, which
    # the CSRF check refuses, so nobody could unsubscribe.
    response["Referrer-Policy"] = "same-origin"
    return response


@hq_required
@require_http_methods(["GET", "POST"])
def hq_consent_record(request: HttpRequest, member_id: int) -> HttpResponse:
    """Head office (or the member's store manager) records a decision the member made on a
    paper form, by phone or in store: the form, then a confirmation showing what will be
    recorded and the wording the member agreed to, then the entry (source "hq", the
    staff member recorded). Another store's member is a 404 and nothing is written."""
    member = Member.objects.for_user(request.user).filter(pk=member_id).first()
    if member is None:
        raise Http404
    form = HqConsentForm(request.POST or None)
    confirming = False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        purpose = ConsentPurpose(data["purpose"])
        if request.POST.get("edit"):
            pass  # back to the form, as filled in
        elif request.POST.get("confirmed") == "1":
            try:
                consent_record(
                    member=member,
                    purpose=purpose,
                    granted=data["granted"],
                    source=ConsentSource.HQ,
                    channel=data["channel"],
                    assisted_by=request.user,  # type: ignore[arg-type]
                    note=data["note"],
                )
            except MemberError as exc:
                form.add_error(None, str(exc.message))
            else:
                if data["granted"]:
                    text = _("Consent recorded: %(purpose)s.")
                else:
                    text = _("Withdrawal recorded: %(purpose)s.")
                messages.success(request, text % {"purpose": purpose.label})
                return redirect(reverse("hq:member-profile", args=[member.pk]) + "#section-consent")
        else:
            confirming = True
    return render(
        request,
        "campaigns/hq/consent_record.html",
        {
            "member": member,
            "form": form,
            "confirming": confirming,
            **(_confirmation(form.cleaned_data) if confirming else {}),
        },
    )


def _confirmation(data: dict[str, Any]) -> dict[str, Any]:
    """What the confirmation step shows: the purpose, its wording and the channel."""
    purpose = ConsentPurpose(data["purpose"])
    return {
        "purpose_label": purpose.label,
        "wording": WORDING[purpose],
        "channel_label": dict(HQ_CHANNELS)[data["channel"]],
    }
