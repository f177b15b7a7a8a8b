"""The new-campaign form: a template's defaults, editable — the campaign's settings and
its steps as an ordered list (a formset; a row's order is its step number, an empty
row is skipped). Rules that span fields (window, trigger settings, step targets,
content variables) are checked by the service, which answers with a clear message."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from campaigns.forms import cost_field, holdout_percent_field
from campaigns.journey_templates import TEMPLATES
from campaigns.models import BranchCondition, GatewayKind, StepKind, TriggerKind
from campaigns.selectors import materials_for_user
from campaigns.services.journeys import StepSpec
from members.models import Segment, Tag
from scrm.org.models import Store


def _datetime_field(label: Any) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M"],
    )


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=100, label=_("Name"))
    goal = forms.CharField(
        max_length=500, required=False, label=_("Goal"), widget=forms.Textarea(attrs={"rows": 2})
    )
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.none(), required=False, label=_("Audience (empty: everyone)")
    )
    store = forms.ModelChoiceField(
        queryset=Store.objects.none(), required=False, label=_("Store (empty: head office)")
    )
    starts_at = _datetime_field(_("Starts"))
    ends_at = _datetime_field(_("Ends"))
    trigger = forms.ChoiceField(choices=TriggerKind.choices, label=_("Starts for a member when"))
    days_before = forms.IntegerField(
        required=False, label=_("Birthday: days before"), help_text=_("0 to 30")
    )
    days = forms.IntegerField(
        required=False, label=_("Days without a purchase"), help_text=_("1 to 730")
    )
    hours = forms.IntegerField(
        required=False, label=_("Cart abandoned after (hours)"), help_text=_("1 to 72")
    )
    exit_on_conversion = forms.BooleanField(required=False, label=_("Leave when they buy"))
    exit_tag = forms.ModelChoiceField(
        queryset=Tag.objects.none(), required=False, label=_("Leave when tagged")
    )
    holdout_percent = holdout_percent_field(
        help_text=_(
            "A share of those entering, drawn at random, is sent nothing: their purchases "
            "show what would have happened anyway (uplift). 0: no control group."
        )
    )
    cost = cost_field()

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if getattr(user, "is_hq", False):
            segments = Segment.objects.filter(archived=False)
        else:
            segments = Segment.objects.filter(
                Q(store__isnull=True) | Q(store__in=Store.objects.for_user(user)), archived=False
            )
            self.fields["store"].required = True
        self.fields["segment"].queryset = segments.order_by("name")  # type: ignore[attr-defined]
        self.fields["store"].queryset = Store.objects.for_user(user)  # type: ignore[attr-defined]
        self.fields["exit_tag"].queryset = Tag.objects.filter(active=True).select_related(  # type: ignore[attr-defined]
            "group"
        )

    def clean_holdout_percent(self) -> int:
        value = self.cleaned_data.get("holdout_percent")
        return 0 if value is None else int(value)

    def clean_cost(self) -> Decimal:
        value = self.cleaned_data.get("cost")
        return Decimal("0") if value is None else value

    def trigger_params(self) -> dict[str, Any]:
        data = self.cleaned_data
        names = {
            TriggerKind.BIRTHDAY: ["days_before"],
            TriggerKind.NO_PURCHASE_DAYS: ["days"],
            TriggerKind.CART_ABANDONED: ["hours"],
        }.get(data["trigger"], [])
        return {name: data.get(name) for name in names}


class StepForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("", "—"), *StepKind.choices], required=False, label=_("Step")
    )
    channel = forms.ChoiceField(
        choices=[("", "—"), *GatewayKind.choices], required=False, label=_("Channel")
    )
    material = forms.ModelChoiceField(
        queryset=materials_for_user(None), required=False, label=_("Material")
    )
    title = forms.CharField(max_length=100, required=False, label=_("Title"))
    body = forms.CharField(
        max_length=2000, required=False, label=_("Text"), widget=forms.Textarea(attrs={"rows": 2})
    )
    wait_hours = forms.IntegerField(required=False, min_value=1, label=_("Wait (hours)"))
    condition = forms.ChoiceField(
        choices=[("", "—"), *BranchCondition.choices], required=False, label=_("Condition")
    )
    tag = forms.ModelChoiceField(queryset=Tag.objects.none(), required=False, label=_("Tag"))
    yes_position = forms.IntegerField(required=False, min_value=1, label=_("If yes, go to"))
    no_position = forms.IntegerField(required=False, min_value=1, label=_("If no, go to"))

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["material"].queryset = materials_for_user(user).order_by("-created_at")  # type: ignore[attr-defined]
        self.fields["tag"].queryset = Tag.objects.filter(active=True).select_related("group")  # type: ignore[attr-defined]


StepFormSet = forms.formset_factory(StepForm, extra=2, max_num=30, validate_max=True)


def step_specs(formset: Any) -> list[StepSpec]:
    """The filled rows, numbered in order (an empty row is skipped)."""
    specs: list[StepSpec] = []
    for form in formset.forms:
        data = form.cleaned_data
        if not data or not data.get("kind"):
            continue
        specs.append(
            StepSpec(
                position=len(specs) + 1,
                kind=data["kind"],
                channel=data.get("channel") or "",
                material=data.get("material"),
                title=data.get("title") or "",
                body=data.get("body") or "",
                wait_hours=data.get("wait_hours"),
                condition=data.get("condition") or "",
                tag=data.get("tag"),
                yes_position=data.get("yes_position"),
                no_position=data.get("no_position"),
            )
        )
    return specs


def template_initial(key: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The form's and the steps' initial values for a template."""
    template = TEMPLATES[key]
    initial: dict[str, Any] = {
        "name": str(template.name),
        "goal": str(template.goal),
        "trigger": template.trigger,
        "exit_on_conversion": template.exit_on_conversion,
        **template.trigger_params,
    }
    steps = [
        {
            "kind": draft.kind,
            "channel": draft.channel,
            "title": draft.title,
            "body": draft.body,
            "wait_hours": draft.wait_hours,
            "condition": draft.condition,
            "yes_position": draft.yes,
            "no_position": draft.no,
        }
        for draft in template.steps
    ]
    return initial, steps


# --- editing a saved campaign ---------------------------------------------------------------


def campaign_initial(campaign: Any) -> dict[str, Any]:
    """The settings form's values for a saved campaign."""
    return {
        "name": campaign.name,
        "goal": campaign.goal,
        "segment": campaign.segment_id,
        "store": campaign.store_id,
        "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at,
        "trigger": campaign.trigger,
        "exit_on_conversion": campaign.exit_on_conversion,
        "exit_tag": campaign.exit_tag_id,
        "holdout_percent": campaign.holdout_percent,
        "cost": campaign.cost,
        **(campaign.trigger_params or {}),
    }


WAIT_UNITS = {"hours": 1, "days": 24}


class StepEditForm(StepForm):
    """One step of a saved campaign, added or changed on its own. A wait is given in
    hours or days; the range (1 hour to 365 days) is the service's to check."""

    field_order = [
        "position",
        "kind",
        "channel",
        "material",
        "title",
        "body",
        "wait",
        "wait_unit",
        "condition",
        "tag",
        "yes_position",
        "no_position",
    ]
    wait_hours = None  # type: ignore[assignment]
    kind = forms.ChoiceField(choices=StepKind.choices, label=_("Step"))
    wait = forms.IntegerField(required=False, label=_("Wait"))
    wait_unit = forms.ChoiceField(
        choices=[("hours", _("hours")), ("days", _("days"))],
        required=False,
        initial="hours",
        label=_("Unit"),
    )
    position = forms.IntegerField(
        required=False,
        min_value=1,
        label=_("As step number"),
        help_text=_("Empty: after the last step."),
    )

    def __init__(self, *args: Any, user: Any = None, change: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, user=user, **kwargs)
        if change:  # shown on the page with the add form: ids of its own
            self.auto_id = "id_change_%s"
            self.fields["position"].required = True
            self.fields["position"].widget = forms.HiddenInput()

    def spec(self) -> StepSpec:
        data = self.cleaned_data
        wait = data.get("wait")
        return StepSpec(
            position=data.get("position") or 0,
            kind=data["kind"],
            channel=data.get("channel") or "",
            material=data.get("material"),
            title=data.get("title") or "",
            body=data.get("body") or "",
            wait_hours=None
            if wait is None
            else wait * WAIT_UNITS.get(data.get("wait_unit") or "hours", 1),
            condition=data.get("condition") or "",
            tag=data.get("tag"),
            yes_position=data.get("yes_position"),
            no_position=data.get("no_position"),
        )


def step_initial(step: Any) -> dict[str, Any]:
    """The step form's values for a saved step (a wait of whole days shown in days)."""
    hours = step.wait_hours
    in_days = bool(hours) and hours % 24 == 0
    return {
        "position": step.position,
        "kind": step.kind,
        "channel": step.channel,
        "material": step.material_id,
        "wait": (hours // 24 if in_days else hours) if hours else None,
        "wait_unit": "days" if in_days else "hours",
        "condition": step.condition,
        "tag": step.tag_id,
        "yes_position": step.yes_position,
        "no_position": step.no_position,
    }
