"""Campaigns and their journeys: drafting from a template, activating (head office),
pausing, ending; enrolling members when a trigger fires; walking them through the steps.

Enrolling (`journeys_enroll`, beat every 10 minutes) is one INSERT … SELECT per active
campaign, for the members whose trigger fired since the campaign's last run, within its
audience and store, with ON CONFLICT on the partial unique index (campaign, member)
WHERE state = 'active': a member is never in the same journey twice at once, and two
runs at once cannot both add them (the campaign row is also locked for the run).

Advancing (`journeys_advance`, beat every minute) takes due enrollments in batches with
FOR UPDATE SKIP LOCKED and walks each one until a wait or the end. Exit conditions come
first (opted out of all marketing; withdrew profiling consent, when the journey profiles
its members: `campaign_uses_profiling`; converted when the campaign says so; the exit
tag).
Members reaching a send step are added to that step's wave for the day — a `Broadcast`
per (step, local day) — in one INSERT … SELECT per step and batch, classified by the
same suppression CASE as a broadcast (`_classify_sql`: opt-outs, identity, caps over
every campaign's planned and sent deliveries), with ON CONFLICT (broadcast, member) DO
NOTHING; the wave is dispatched when the batch commits. `send_chunk` then sends exactly
once and checks opt-outs and caps again; the broadcast sweeper re-dispatches lost tasks.

Sends wait for the end of the quiet hours (22:00–08:00) as broadcasts do.

A campaign with a control group (`holdout_percent`) draws that share of each run's
entrants at random as `control` enrollments. They walk the journey like the others, but
their deliveries are written "held_out" (sent_at: when they would have been sent) instead
of planned: nothing reaches them, no cap counts them, no order converts them, and an
"opened" branch is "no" for them.
"""

from __future__ import annotations

import calendar
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.journey_templates import TEMPLATES
from campaigns.models import (
    GUIDE_POSTED,
    BranchCondition,
    Broadcast,
    BroadcastStatus,
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    EnrollmentState,
    ExitReason,
    GatewayKind,
    JourneyEnrollment,
    JourneyStep,
    JourneyVisit,
    MarketingOptOut,
    Material,
    MaterialKind,
    StepKind,
    TriggerKind,
)
from campaigns.selectors.consent import PROFILING_WITHDRAWN_SQL, profiling_withdrawn
from campaigns.services.broadcasts import after_quiet_hours
from campaigns.services.content import content_check
from campaigns.services.planning import _classify_sql, holdout_and_cost_check
from campaigns.services.sending import broadcast_dispatch
from members.models import MemberTag, Segment, Tag
from members.segments.rules import rules_use_profiling
from members.services.errors import Conflict, MemberError
from members.services.segments import segment_members
from scrm.core.services import audit_record
from scrm.org.models import Store

TEXT_ONLY_CHANNELS = (GatewayKind.SMS, GatewayKind.SUBSCRIPTION)
MAX_WAIT_HOURS = 24 * 365
BATCH = 500
MAX_BATCHES = 40
# A birthday campaign that missed runs catches up at most this many days.
BIRTHDAY_CATCH_UP_DAYS = 7

# Trigger settings: name → (lowest, highest, default; None: required).
TRIGGER_PARAMS: dict[str, dict[str, tuple[int, int, int | None]]] = {
    TriggerKind.REGISTERED: {},
    TriggerKind.FIRST_PURCHASE: {},
    TriggerKind.BIRTHDAY: {"days_before": (0, 30, 0)},
    TriggerKind.NO_PURCHASE_DAYS: {"days": (1, 730, None)},
    TriggerKind.TIER_UP: {},
    TriggerKind.CART_ABANDONED: {"hours": (1, 72, 4)},
    TriggerKind.AUDIENCE: {},
}

# Triggers that fire on behaviour inferred for personalisation, with the notion of the
# segment fields marked `profiling`: an abandoned cart is read from the member's browsing
# events (as the behaviour fields are). Registration, birthday and a tier upgrade are
# facts of the membership; a first purchase and days without one are facts of the order
# record, as the order-count and last-purchase fields are, which profile nobody.
PROFILING_TRIGGERS = frozenset({TriggerKind.CART_ABANDONED})


def campaign_uses_profiling(campaign: Campaign) -> bool:
    """Whether the journey picks its members by profiling — its trigger, or an audience
    by behaviour or RFM (as a broadcast's): then members who withdrew profiling consent
    do not enter, and leave it at their next step (PIPL)."""
    return campaign.trigger in PROFILING_TRIGGERS or (
        campaign.segment is not None and rules_use_profiling(campaign.segment.rules)
    )


# --- validation ---------------------------------------------------------------------------------


@dataclass
class StepSpec:
    """A step as drafted: an existing material, or a title and text that become a new
    text material."""

    position: int
    kind: str
    channel: str = ""
    material: Material | None = None
    title: str = ""
    body: str = ""
    wait_hours: int | None = None
    condition: str = ""
    tag: Tag | None = None
    yes_position: int | None = None
    no_position: int | None = None


def trigger_params_clean(trigger: str, params: dict[str, Any]) -> dict[str, int]:
    """The trigger's settings as whole numbers within range (defaults filled in)."""
    if trigger not in TRIGGER_PARAMS:
        raise MemberError("unknown_trigger", _("Unknown trigger."))
    clean: dict[str, int] = {}
    for name, (low, high, default) in TRIGGER_PARAMS[trigger].items():
        raw = params.get(name)
        if raw in (None, ""):
            if default is None:
                raise MemberError(
                    "trigger_param", _("The trigger needs “%(name)s”.") % {"name": name}
                )
            clean[name] = default
            continue
        try:
            value = int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            value = low - 1
        if not low <= value <= high or str(raw).strip() != str(value):
            raise MemberError(
                "trigger_param",
                _("“%(name)s” must be a whole number from %(low)s to %(high)s.")
                % {"name": name, "low": low, "high": high},
            )
        clean[name] = value
    return clean


def steps_validate(steps: list[StepSpec]) -> None:
    """Positions 1…n, at least one send, every send has content the channel can carry
    (variables checked), every wait a duration, every branch a condition and targets
    that exist further on (forward only: no walk loops)."""
    if not steps:
        raise MemberError("no_steps", _("Add the journey's steps."))
    positions = sorted(step.position for step in steps)
    if positions != list(range(1, len(steps) + 1)):
        raise MemberError("step_positions", _("Number the steps 1, 2, 3 … without gaps."))
    if not any(step.kind == StepKind.SEND for step in steps):
        raise MemberError("no_send_step", _("A journey needs at least one step that sends."))
    for step in steps:
        where = _("Step %(n)s: ") % {"n": step.position}
        if step.kind == StepKind.SEND:
            # A journey messages each member: guide-posted channels are for broadcasts.
            if step.channel not in GatewayKind.values or step.channel in GUIDE_POSTED:
                raise MemberError("step_channel", where + _("choose a channel."))
            material = step.material
            if material is None and not (step.title.strip() and step.body.strip()):
                raise MemberError(
                    "step_content", where + _("pick a material or write a title and text.")
                )
            text = material.body if material is not None else step.body
            try:
                content_check(text)
            except MemberError as exc:
                raise MemberError(exc.code, where + str(exc.message)) from exc
            if step.channel in TEXT_ONLY_CHANNELS and (
                not text or (material is not None and material.kind != MaterialKind.TEXT)
            ):
                raise MemberError(
                    "step_content",
                    where + _("SMS and subscription messages carry text only."),
                )
        elif step.kind == StepKind.WAIT:
            if step.wait_hours is None or not 1 <= step.wait_hours <= MAX_WAIT_HOURS:
                raise MemberError("step_wait", where + _("wait from 1 hour to 365 days."))
        elif step.kind == StepKind.BRANCH:
            if step.condition not in BranchCondition.values:
                raise MemberError("step_condition", where + _("choose a condition."))
            if step.condition == BranchCondition.HAS_TAG and step.tag is None:
                raise MemberError("step_condition", where + _("choose the tag to check."))
            for target in (step.yes_position, step.no_position):
                if target is None:
                    continue
                if target not in positions:
                    raise MemberError(
                        "step_missing",
                        where + _("there is no step %(n)s to go to.") % {"n": target},
                    )
                if target <= step.position:
                    raise MemberError(
                        "step_backwards",
                        where + _("a branch goes on to a later step (no loops)."),
                    )
        elif step.kind != StepKind.END:
            raise MemberError("step_kind", where + _("unknown kind of step."))


def _window_check(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if ends_at <= starts_at:
        raise MemberError("window", _("The campaign must end after it starts."))
    if ends_at <= now:
        raise MemberError("window_past", _("The campaign's end is in the past."))


def template_steps(template_key: str) -> list[StepSpec]:
    """A template's default steps as drafts (their texts become materials on save)."""
    template = TEMPLATES.get(template_key)
    if template is None:
        raise MemberError("unknown_template", _("Unknown campaign template."))
    return [
        StepSpec(
            position=n,
            kind=draft.kind,
            channel=draft.channel,
            title=draft.title,
            body=draft.body,
            wait_hours=draft.wait_hours,
            condition=draft.condition,
            yes_position=draft.yes,
            no_position=draft.no,
        )
        for n, draft in enumerate(template.steps, start=1)
    ]


# --- writes -------------------------------------------------------------------------------------


def _may_use_store(actor: Any, store: Store | None) -> bool:
    if getattr(actor, "is_hq", False):
        return True
    return store is not None and Store.objects.for_user(actor).filter(pk=store.pk).exists()


@transaction.atomic
def campaign_create(
    *,
    actor: Any,
    template_key: str,
    name: str,
    goal: str,
    starts_at: datetime,
    ends_at: datetime,
    segment: Segment | None = None,
    store: Store | None = None,
    trigger: str | None = None,
    trigger_params: dict[str, Any] | None = None,
    exit_on_conversion: bool | None = None,
    exit_tag: Tag | None = None,
    steps: list[StepSpec] | None = None,
    holdout_percent: int = 0,
    cost: Decimal = Decimal("0"),
    now: datetime | None = None,
) -> Campaign:
    """A draft campaign from a template (its defaults for whatever is not given). A store
    manager drafts for one of their stores; head office activates."""
    now = now or timezone.now()
    template = TEMPLATES.get(template_key)
    if template is None:
        raise MemberError("unknown_template", _("Unknown campaign template."))
    if not name.strip():
        raise MemberError("name", _("Give the campaign a name."))
    if not _may_use_store(actor, store):
        raise MemberError(
            "store_required", _("Choose one of your stores for the campaign."), status=403
        )
    _window_check(starts_at, ends_at, now)
    holdout_and_cost_check(holdout_percent, cost)
    trigger = trigger or template.trigger
    params = trigger_params_clean(
        trigger, template.trigger_params if trigger_params is None else trigger_params
    )
    steps = template_steps(template_key) if steps is None else steps
    steps_validate(steps)
    campaign = Campaign.objects.create(
        name=name.strip(),
        template=template_key,
        goal=goal.strip(),
        segment=segment,
        store=store,
        starts_at=starts_at,
        ends_at=ends_at,
        trigger=trigger,
        trigger_params=params,
        exit_on_conversion=(
            template.exit_on_conversion if exit_on_conversion is None else exit_on_conversion
        ),
        exit_tag=exit_tag,
        holdout_percent=holdout_percent,
        cost=cost,
        created_by=actor,
    )
    for spec in sorted(steps, key=lambda s: s.position):
        material = spec.material
        if spec.kind == StepKind.SEND and material is None:
            material = Material.objects.create(
                kind=MaterialKind.TEXT,
                title=spec.title.strip()[:100],
                body=spec.body.strip(),
                store=store,
                created_by=actor,
            )
        JourneyStep.objects.create(
            campaign=campaign,
            position=spec.position,
            kind=spec.kind,
            channel=spec.channel if spec.kind == StepKind.SEND else "",
            material=material if spec.kind == StepKind.SEND else None,
            wait_hours=spec.wait_hours if spec.kind == StepKind.WAIT else None,
            condition=spec.condition if spec.kind == StepKind.BRANCH else "",
            tag=spec.tag if spec.kind == StepKind.BRANCH else None,
            yes_position=spec.yes_position if spec.kind == StepKind.BRANCH else None,
            no_position=spec.no_position if spec.kind == StepKind.BRANCH else None,
        )
    audit_record(
        actor=actor, action="campaign.create", target=campaign, data={"template": template_key}
    )
    return campaign


def _steps_of(campaign: Campaign) -> list[StepSpec]:
    return [
        StepSpec(
            position=s.position,
            kind=s.kind,
            channel=s.channel,
            material=s.material,
            wait_hours=s.wait_hours,
            condition=s.condition,
            tag=s.tag,
            yes_position=s.yes_position,
            no_position=s.no_position,
        )
        for s in campaign.steps.select_related("material", "tag__group").order_by("position")
    ]


@transaction.atomic
def campaign_activate(*, campaign: Campaign, actor: Any, now: datetime | None = None) -> Campaign:
    """Head office starts a draft or resumes a paused campaign. Triggers count from now:
    what happened before (or while paused) enrolls nobody."""
    now = now or timezone.now()
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not getattr(actor, "is_hq", False):
        raise MemberError(
            "not_an_approver", _("Campaigns are activated by head office."), status=403
        )
    if locked.status not in (CampaignStatus.DRAFT, CampaignStatus.PAUSED):
        raise Conflict("not_startable", _("Only a draft or paused campaign is activated."))
    _window_check(locked.starts_at, locked.ends_at, now)
    steps_validate(_steps_of(locked))
    locked.status = CampaignStatus.ACTIVE
    locked.activated_by = actor
    locked.activated_at = now
    # Birthday and audience triggers run first for the day the campaign starts.
    locked.last_enrolled_at = now if locked.last_enrolled_at is not None else None
    locked.save(update_fields=["status", "activated_by", "activated_at", "last_enrolled_at"])
    audit_record(actor=actor, action="campaign.activate", target=locked, data={})
    return locked


@transaction.atomic
def campaign_pause(*, campaign: Campaign, actor: Any) -> Campaign:
    """Nobody enters and nobody moves on while paused; members keep their place."""
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if locked.status != CampaignStatus.ACTIVE:
        raise Conflict("not_active", _("Only an active campaign is paused."))
    locked.status = CampaignStatus.PAUSED
    locked.save(update_fields=["status"])
    audit_record(actor=actor, action="campaign.pause", target=locked, data={})
    return locked


def _exit_all(campaign_ids: list[int], now: datetime) -> int:
    return JourneyEnrollment.objects.filter(
        campaign_id__in=campaign_ids, state=EnrollmentState.ACTIVE
    ).update(
        state=EnrollmentState.EXITED,
        exit_reason=ExitReason.CAMPAIGN_ENDED,
        finished_at=now,
        next_run_at=None,
    )


@transaction.atomic
def campaign_end(*, campaign: Campaign, actor: Any, now: datetime | None = None) -> int:
    """End a campaign for good: every member still on the journey leaves it. Messages
    already handed to a wave still go (as a cancelled broadcast's sent rows stay sent).
    Returns how many members left."""
    now = now or timezone.now()
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if locked.status == CampaignStatus.ENDED:
        raise Conflict("ended", _("This campaign has already ended."))
    locked.status = CampaignStatus.ENDED
    locked.save(update_fields=["status"])
    left = _exit_all([locked.pk], now)
    audit_record(actor=actor, action="campaign.end", target=locked, data={"left": left})
    return left


# --- editing ------------------------------------------------------------------------------------
#
# A draft is edited freely: its settings and its steps. A paused campaign keeps its steps
# (members wait at step positions, and each step carries its visits and waves), and its
# store (its waves and its managers' view of it follow the store); its other settings
# may change, and head office looks at it again when it activates it. Active and ended
# campaigns are read-only.

STEP_EDITS = ("add", "change", "remove", "up", "down")


@dataclass
class StepsEdited:
    """The journey after a step edit; `ended`: (position, "yes"/"no") of the branch paths
    whose target was removed and that now end the journey."""

    steps: list[StepSpec]
    ended: list[tuple[int, str]] = field(default_factory=list)


def _may_edit(actor: Any, campaign: Campaign) -> None:
    if getattr(actor, "is_hq", False):
        return
    if campaign.store_id is None:
        raise MemberError(
            "not_yours", _("Head office's campaigns are edited by head office."), status=403
        )
    if not Store.objects.for_user(actor).filter(pk=campaign.store_id).exists():
        raise MemberError("not_yours", _("This campaign is another store's."), status=403)


def _read_only(status: str) -> Conflict:
    if status == CampaignStatus.ENDED:
        return Conflict("read_only", _("This campaign has ended: it is read-only."))
    return Conflict(
        "read_only",
        _("This campaign is active: it is read-only. Pause it to change its settings."),
    )


def steps_edited(
    steps: list[StepSpec], *, op: str, position: int | None = None, step: StepSpec | None = None
) -> StepsEdited:
    """The steps after one edit, renumbered 1…n, with branch targets remapped so they keep
    pointing at the same steps (a target that was removed becomes the end). `add` inserts
    `step` at `position` (None: at the end); `change` replaces the step at `position`;
    the targets of an added or changed step are read in the resulting numbering.
    Not validated: see `steps_validate`."""
    items: list[tuple[StepSpec, int | None]] = [
        (s, s.position) for s in sorted(steps, key=lambda s: s.position)
    ]
    count = len(items)
    if op not in STEP_EDITS:
        raise MemberError("step_edit", _("Unknown change to the steps."))
    if op in ("add", "change") and step is None:
        raise MemberError("step_kind", _("Describe the step."))
    if op == "add":
        at = count + 1 if position is None else position
        if not 1 <= at <= count + 1:
            raise MemberError(
                "step_missing",
                _("A new step goes at a number from 1 to %(n)s.") % {"n": count + 1},
            )
        assert step is not None
        items.insert(at - 1, (step, None))
    else:
        if position is None or not 1 <= position <= count:
            raise MemberError("step_missing", _("There is no step %(n)s.") % {"n": position or "?"})
        i = position - 1
        if op == "change":
            assert step is not None
            items[i] = (step, None)
        elif op == "remove":
            items.pop(i)
        elif op == "up":
            if i == 0:
                raise MemberError("step_move", _("The first step cannot move up."))
            items[i - 1], items[i] = items[i], items[i - 1]
        else:
            if i == count - 1:
                raise MemberError("step_move", _("The last step cannot move down."))
            items[i], items[i + 1] = items[i + 1], items[i]
    mapping = {old: new for new, (_s, old) in enumerate(items, start=1) if old is not None}
    removed = position if op == "remove" else None
    result = StepsEdited(steps=[])
    for new, (spec, old) in enumerate(items, start=1):
        copy = replace(spec, position=new)
        if copy.kind == StepKind.BRANCH and old is not None:  # kept: remap its targets
            for attr, label in (("yes_position", "yes"), ("no_position", "no")):
                target = getattr(copy, attr)
                if target is None:
                    continue
                if target == removed:
                    setattr(copy, attr, None)
                    result.ended.append((new, label))
                else:
                    setattr(copy, attr, mapping.get(target, target))
        result.steps.append(copy)
    return result


def _steps_write(campaign: Campaign, steps: list[StepSpec], actor: Any) -> None:
    """Replace a draft's steps (nothing refers to a draft's steps yet: no visits, no
    waves). A new text becomes a text material of the campaign's store."""
    campaign.steps.all().delete()
    for spec in sorted(steps, key=lambda s: s.position):
        send = spec.kind == StepKind.SEND
        branch = spec.kind == StepKind.BRANCH
        material = spec.material
        if send and material is None:
            material = Material.objects.create(
                kind=MaterialKind.TEXT,
                title=spec.title.strip()[:100],
                body=spec.body.strip(),
                store=campaign.store,
                created_by=actor,
            )
        JourneyStep.objects.create(
            campaign=campaign,
            position=spec.position,
            kind=spec.kind,
            channel=spec.channel if send else "",
            material=material if send else None,
            wait_hours=spec.wait_hours if spec.kind == StepKind.WAIT else None,
            condition=spec.condition if branch else "",
            tag=spec.tag if branch and spec.condition == BranchCondition.HAS_TAG else None,
            yes_position=spec.yes_position if branch else None,
            no_position=spec.no_position if branch else None,
        )


@transaction.atomic
def campaign_steps_edit(
    *,
    campaign: Campaign,
    actor: Any,
    op: str,
    position: int | None = None,
    step: StepSpec | None = None,
) -> StepsEdited:
    """One change to a draft's steps — add, change, remove, move up or down — checked as
    a whole journey (`steps_validate`) before anything is written; refused with a clear
    message otherwise. Branch targets follow their steps (see `steps_edited`)."""
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    _may_edit(actor, locked)
    if locked.status == CampaignStatus.PAUSED:
        raise Conflict(
            "steps_locked",
            _(
                "A paused campaign's steps stay as they are: members are waiting at them. "
                "Its settings can still change."
            ),
        )
    if locked.status != CampaignStatus.DRAFT:
        raise _read_only(locked.status)
    edited = steps_edited(_steps_of(locked), op=op, position=position, step=step)
    steps_validate(edited.steps)
    _steps_write(locked, edited.steps, actor)
    audit_record(
        actor=actor,
        action="campaign.steps",
        target=locked,
        data={
            "op": op,
            "position": position,
            "kind": step.kind if step is not None else None,
            "steps": len(edited.steps),
            "ended": [f"{n}:{label}" for n, label in edited.ended],
        },
    )
    return edited


@transaction.atomic
def campaign_update(
    *,
    campaign: Campaign,
    actor: Any,
    name: str,
    goal: str,
    starts_at: datetime,
    ends_at: datetime,
    segment: Segment | None,
    store: Store | None,
    trigger: str,
    trigger_params: dict[str, Any],
    exit_on_conversion: bool,
    exit_tag: Tag | None,
    holdout_percent: int | None = None,
    cost: Decimal | None = None,
    now: datetime | None = None,
) -> Campaign:
    """Change a draft's (or a paused campaign's) settings, checked as on creation. A
    paused campaign keeps its store. The control group's share and the cost stay as they
    are when not given; a new share applies to members entering from then on."""
    now = now or timezone.now()
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    _may_edit(actor, locked)
    if locked.status not in (CampaignStatus.DRAFT, CampaignStatus.PAUSED):
        raise _read_only(locked.status)
    if not name.strip():
        raise MemberError("name", _("Give the campaign a name."))
    if not _may_use_store(actor, store):
        raise MemberError(
            "store_required", _("Choose one of your stores for the campaign."), status=403
        )
    if locked.status == CampaignStatus.PAUSED and store != locked.store:
        raise Conflict(
            "store_locked", _("A paused campaign stays with its store: end it and draft anew.")
        )
    _window_check(starts_at, ends_at, now)
    holdout_percent = locked.holdout_percent if holdout_percent is None else holdout_percent
    cost = locked.cost if cost is None else cost
    holdout_and_cost_check(holdout_percent, cost)
    params = trigger_params_clean(trigger, trigger_params)
    values: dict[str, Any] = {
        "name": name.strip(),
        "goal": goal.strip(),
        "segment": segment,
        "store": store,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "trigger": trigger,
        "trigger_params": params,
        "exit_on_conversion": exit_on_conversion,
        "exit_tag": exit_tag,
        "holdout_percent": holdout_percent,
        "cost": cost,
    }
    changed = [f for f, value in values.items() if getattr(locked, f) != value]
    for f in changed:
        setattr(locked, f, values[f])
    if changed:
        locked.save(update_fields=changed)
        audit_record(
            actor=actor, action="campaign.update", target=locked, data={"changed": changed}
        )
    return locked


# --- enrolling ----------------------------------------------------------------------------------


def _trigger_sql(campaign: Campaign, since: datetime, now: datetime) -> tuple[str, list[Any]]:
    """SELECT of member ids whose trigger fired in (since, now]."""
    params = campaign.trigger_params or {}
    trigger = campaign.trigger
    if trigger == TriggerKind.REGISTERED:
        return (
            "SELECT id FROM members_member WHERE member_since > %s AND member_since <= %s",
            [since, now],
        )
    if trigger == TriggerKind.FIRST_PURCHASE:
        return (
            "SELECT id FROM members_member WHERE first_order_at > %s AND first_order_at <= %s",
            [since, now],
        )
    if trigger == TriggerKind.NO_PURCHASE_DAYS:
        gap = timedelta(days=int(params["days"]))
        # The last purchase crossed N days ago since the last run.
        return (
            "SELECT id FROM members_member WHERE last_order_at > %s AND last_order_at <= %s",
            [since - gap, now - gap],
        )
    if trigger == TriggerKind.TIER_UP:
        return (
            "SELECT member_id FROM members_tierchange WHERE kind = 'upgrade' "
            "AND changed_at > %s AND changed_at <= %s",
            [since, now],
        )
    if trigger == TriggerKind.CART_ABANDONED:
        wait = timedelta(hours=int(params["hours"]))
        # Added to the cart `hours` ago (crossed since the last run, within the last day)
        # and no paid order since.
        return (
            "SELECT e.member_id FROM touchpoints_behaviourevent e "
            "WHERE e.type = 'add_to_cart' AND e.occurred_at > %s AND e.occurred_at <= %s "
            "AND e.occurred_at >= %s AND NOT EXISTS (SELECT 1 FROM members_order o "
            "WHERE o.member_id = e.member_id AND o.paid_at >= e.occurred_at "
            "AND o.status <> 'refunded')",
            [since - wait, now - wait, now - timedelta(days=1)],
        )
    if trigger == TriggerKind.BIRTHDAY:
        return (
            "SELECT id FROM members_member WHERE birthday IS NOT NULL AND "
            "(extract(month FROM birthday)::int * 100 + extract(day FROM birthday)::int) "
            "= ANY(%s)",
            [_birthday_codes(campaign, now)],
        )
    if trigger == TriggerKind.AUDIENCE:
        return "SELECT id FROM members_member", []
    raise MemberError("unknown_trigger", _("Unknown trigger."))


def _birthday_codes(campaign: Campaign, now: datetime) -> list[int]:
    """month*100+day of the birthdays to greet: for each local day not yet run, the day
    `days_before` ahead. 29 Feb birthdays are greeted on 28 Feb in other years."""
    today = timezone.localdate(now)
    ahead = timedelta(days=int((campaign.trigger_params or {}).get("days_before", 0)))
    if campaign.last_enrolled_at is None:
        first = today
    else:
        first = max(
            timezone.localdate(campaign.last_enrolled_at) + timedelta(days=1),
            today - timedelta(days=BIRTHDAY_CATCH_UP_DAYS - 1),
        )
    codes: list[int] = []
    day = first
    while day <= today:
        target: date = day + ahead
        codes.append(target.month * 100 + target.day)
        if target.month == 2 and target.day == 28 and not calendar.isleap(target.year):
            codes.append(229)
        day += timedelta(days=1)
    return codes


# Those whose trigger fired (within the audience, not opted out, not already on the
# journey), each with whether they withdrew profiling consent when the journey profiles
# (`{withdrawn}`): those are counted, and left out. The others enter, numbered in a
# random order: the first floor(n × percent / 100 + r) of them — r drawn once per run in
# [0, 1), so that small runs get their share on average and a run of 1,000 at 10 %
# exactly 100 — are the control group. Members already on the journey are left out
# before the draw (they would only be skipped by the conflict).
ENROLL_SQL = """
WITH fired AS MATERIALIZED (
    SELECT a.id, {withdrawn} AS withdrawn
    FROM (
        SELECT m.id FROM members_member m
        WHERE m.id IN ({trigger}) AND m.merged_into_id IS NULL{filters}
          AND NOT EXISTS (SELECT 1 FROM campaigns_marketingoptout o
                          WHERE o.member_id = m.id AND o.channel = '')
          AND NOT EXISTS (SELECT 1 FROM campaigns_journeyenrollment j
                          WHERE j.campaign_id = %s AND j.member_id = m.id AND j.state = 'active')
    ) AS a(id)
),
entered AS (
    INSERT INTO campaigns_journeyenrollment
        (campaign_id, member_id, state, position, next_run_at, entered_at, exit_reason, control)
    SELECT %s, e.id, 'active', 1, %s, %s, '', e.draw <= floor(e.entering * %s / 100.0 + %s)
    FROM (
        SELECT f.id, row_number() OVER (ORDER BY random()) AS draw, count(*) OVER () AS entering
        FROM fired f WHERE NOT f.withdrawn
    ) AS e
    ON CONFLICT (campaign_id, member_id) WHERE state = 'active' DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM entered), (SELECT count(*) FROM fired WHERE withdrawn)
"""


@transaction.atomic
def _enroll_campaign(campaign_id: int, now: datetime) -> int:
    campaign = (
        Campaign.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("segment")
        .filter(pk=campaign_id, status=CampaignStatus.ACTIVE)
        .first()
    )
    if campaign is None:
        return 0  # another run holds it, or it stopped meanwhile
    start = max(campaign.activated_at or campaign.starts_at, campaign.starts_at)
    since = max(campaign.last_enrolled_at or start, start)
    last = campaign.last_enrolled_at
    if campaign.trigger == TriggerKind.AUDIENCE:
        due = last is None  # the audience enters once, when the campaign starts
    elif campaign.trigger == TriggerKind.BIRTHDAY:
        # Once a local day (the first run greets the day the campaign starts).
        due = last is None or timezone.localdate(last) < timezone.localdate(now)
    else:
        due = since < now
    if not due:
        return 0
    trigger, params = _trigger_sql(campaign, since, now)
    filters = ""
    filter_params: list[Any] = []
    if campaign.store_id is not None:
        filters += " AND m.home_store_id = %s"
        filter_params.append(campaign.store_id)
    if campaign.segment is not None:
        audience, audience_params = (
            segment_members(campaign.segment, now=now).values("pk").query.sql_with_params()
        )
        filters += f" AND m.id IN ({audience})"
        filter_params += list(audience_params)
    percent = campaign.holdout_percent
    offset = random.random() if percent else 0.0  # a draw, not a secret
    withdrawn = PROFILING_WITHDRAWN_SQL if campaign_uses_profiling(campaign) else "FALSE"
    with connection.cursor() as cursor:
        cursor.execute(
            ENROLL_SQL.format(trigger=trigger, filters=filters, withdrawn=withdrawn),
            [*params, *filter_params, campaign.pk, campaign.pk, now, now, percent, offset],
        )
        added, left_out = cursor.fetchone() or (0, 0)
    campaign.last_enrolled_at = now
    fields = ["last_enrolled_at"]
    if left_out:
        campaign.profiling_left_out = F("profiling_left_out") + left_out
        fields.append("profiling_left_out")
    campaign.save(update_fields=fields)
    return int(added)


def journeys_enroll(*, now: datetime | None = None) -> int:
    """Beat, every 10 minutes: start members on the journeys whose trigger fired since
    each campaign's last run. Safe to run twice, or twice at once. Returns how many
    entered."""
    now = now or timezone.now()
    ids = list(
        Campaign.objects.filter(
            status=CampaignStatus.ACTIVE, starts_at__lte=now, ends_at__gt=now
        ).values_list("pk", flat=True)
    )
    return sum(_enroll_campaign(pk, now) for pk in ids)


# --- advancing ----------------------------------------------------------------------------------


@dataclass
class AdvanceStats:
    moved: int = 0
    sent_to_waves: int = 0
    completed: int = 0
    exited: dict[str, int] = field(default_factory=dict)


TAKE_SQL = """
SELECT e.id, e.campaign_id, e.member_id, e.position, e.entered_at, e.control
FROM campaigns_journeyenrollment e
JOIN campaigns_campaign c ON c.id = e.campaign_id
WHERE e.state = 'active' AND e.next_run_at <= %s AND c.status = 'active'
ORDER BY e.next_run_at, e.id
LIMIT %s
FOR UPDATE OF e SKIP LOCKED
"""

CONVERTED_SQL = """
SELECT u.id FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) AS u(id, member_id, since)
WHERE EXISTS (SELECT 1 FROM members_order o WHERE o.member_id = u.member_id
              AND o.paid_at > u.since AND o.paid_at <= %s AND o.status <> 'refunded')
"""

# The member read an in-app message of one of this campaign's waves since entering, or
# opened (followed the tracked link of) any message of its waves since then.
OPENED_SQL = """
SELECT u.id FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::timestamptz[])
    AS u(id, member_id, campaign_id, since)
WHERE EXISTS (
    SELECT 1 FROM campaigns_journeystep s
    JOIN campaigns_broadcast b ON b.journey_step_id = s.id
    JOIN campaigns_inboxmessage i ON i.key = 'b' || b.id || ':m' || u.member_id
    WHERE s.campaign_id = u.campaign_id AND i.created_at >= u.since
      AND i.read_at IS NOT NULL AND i.read_at <= %s)
OR EXISTS (
    SELECT 1 FROM campaigns_journeystep s
    JOIN campaigns_broadcast b ON b.journey_step_id = s.id
    JOIN campaigns_delivery d ON d.broadcast_id = b.id AND d.member_id = u.member_id
    WHERE s.campaign_id = u.campaign_id AND d.status = 'sent' AND d.sent_at >= u.since
      AND d.opened_at IS NOT NULL AND d.opened_at <= %s)
"""

UPDATE_SQL = """
UPDATE campaigns_journeyenrollment e
SET state = u.state, position = u.position, next_run_at = u.next_run_at,
    finished_at = u.finished_at, exit_reason = u.exit_reason
FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::timestamptz[], %s::timestamptz[],
            %s::text[]) AS u(id, state, position, next_run_at, finished_at, exit_reason)
WHERE e.id = u.id
"""

VISITS_SQL = """
INSERT INTO campaigns_journeyvisit (enrollment_id, step_id, at)
SELECT u.e, u.s, %s FROM unnest(%s::bigint[], %s::bigint[]) AS u(e, s)
ON CONFLICT (enrollment_id, step_id) DO NOTHING
"""

# Control-group members who would be sent are held out, "sent" at the moment they would
# have been.
WAVE_SQL = """
INSERT INTO campaigns_delivery (broadcast_id, member_id, channel, send_day, status,
                                reason, sent_at, attempts, provider_ref, error)
SELECT %s, c.member_id, %s, %s,
       CASE WHEN c.reason <> '' OR %s THEN 'suppressed'
            WHEN c.member_id = ANY(%s::bigint[]) THEN 'held_out'
            ELSE 'planned' END,
       CASE WHEN c.reason = '' AND %s THEN 'cancelled' ELSE c.reason END,
       CASE WHEN c.reason = '' AND NOT %s AND c.member_id = ANY(%s::bigint[])
            THEN %s::timestamptz END,
       0, '', ''
FROM ({classify}) AS c
ON CONFLICT (broadcast_id, member_id) DO NOTHING
"""


def _close_ended(now: datetime) -> None:
    """Campaigns whose window closed end; their members leave."""
    with transaction.atomic():
        ended = list(
            Campaign.objects.filter(
                status__in=[CampaignStatus.ACTIVE, CampaignStatus.PAUSED], ends_at__lte=now
            ).values_list("pk", flat=True)
        )
        if ended:
            Campaign.objects.filter(pk__in=ended).update(status=CampaignStatus.ENDED)
            _exit_all(ended, now)


def _reopen_waves(now: datetime) -> None:
    """The broadcast sweeper closes a wave once it has nothing planned; members added
    later that day (or in a race with the sweeper) reopen it and are dispatched."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_broadcast b SET status = 'sending', planned_at = %s "
            "WHERE b.journey_step_id IS NOT NULL AND b.status = 'done' AND b.wave_day >= %s "
            "AND EXISTS (SELECT 1 FROM campaigns_delivery d WHERE d.broadcast_id = b.id "
            "AND d.status = 'planned') RETURNING b.id",
            [now, timezone.localdate(now) - timedelta(days=7)],
        )
        for (wave_id,) in cursor.fetchall():
            broadcast_dispatch(broadcast_id=wave_id)


def _wave_add(
    step: JourneyStep,
    campaign: Campaign,
    member_ids: list[int],
    now: datetime,
    control: list[int] | None = None,
) -> None:
    """Add members to the step's wave for today (created on first use, approved with the
    campaign and sending), classified like a broadcast's audience — the campaign's
    control group (`control`, member ids) held out — and dispatch it when the transaction
    commits."""
    day = timezone.localdate(now)
    wave, _created = Broadcast.objects.get_or_create(
        journey_step=step,
        wave_day=day,
        defaults={
            "name": f"{campaign.name} · {step.position} · {day.isoformat()}"[:100],
            "channel": step.channel,
            "material_id": step.material_id,
            "store_id": campaign.store_id,
            "status": BroadcastStatus.SENDING,
            "created_by_id": campaign.activated_by_id or campaign.created_by_id,
            "approved_by_id": campaign.activated_by_id,
            "planned_at": now,
        },
    )
    locked = Broadcast.objects.select_for_update().get(pk=wave.pk)
    cancelled = locked.status == BroadcastStatus.CANCELLED
    if not cancelled:
        locked.status = BroadcastStatus.SENDING
        locked.planned_at = now
        locked.save(update_fields=["status", "planned_at"])
    held = list(control or [])
    with connection.cursor() as cursor:
        # Caps count other campaigns' planned rows: one planner at a time, as broadcasts.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('broadcast-planning'))")
        classify, params = _classify_sql(
            locked, day, audience=("SELECT unnest(%s::bigint[])", [member_ids])
        )
        cursor.execute(
            WAVE_SQL.format(classify=classify),
            [
                locked.pk,
                locked.channel,
                day,
                cancelled,
                held,
                cancelled,
                cancelled,
                held,
                now,
                *params,
            ],
        )
    if not cancelled:
        broadcast_dispatch(broadcast_id=locked.pk)


@transaction.atomic
def _advance_batch(now: datetime, limit: int, stats: AdvanceStats) -> int:
    with connection.cursor() as cursor:
        cursor.execute(TAKE_SQL, [now, limit])
        rows: list[tuple[int, int, int, int, datetime, bool]] = cursor.fetchall()
        if not rows:
            return 0
        ids = [r[0] for r in rows]
        members = [r[2] for r in rows]
        campaigns = {
            c.pk: c
            for c in Campaign.objects.filter(pk__in={r[1] for r in rows}).select_related("segment")
        }
        steps: dict[int, dict[int, JourneyStep]] = defaultdict(dict)
        for step in JourneyStep.objects.filter(campaign_id__in=campaigns):
            steps[step.campaign_id][step.position] = step
        opted_out = set(
            MarketingOptOut.objects.filter(member_id__in=members, channel="").values_list(
                "member_id", flat=True
            )
        )
        profiling = {pk for pk, c in campaigns.items() if campaign_uses_profiling(c)}
        profiled = [r[2] for r in rows if r[1] in profiling]
        unprofiled = profiling_withdrawn(profiled) if profiled else set()
        cursor.execute(CONVERTED_SQL, [ids, members, [r[4] for r in rows], now])
        converted = {r[0] for r in cursor.fetchall()}
        opened: set[int] = set()
        if any(
            s.condition == BranchCondition.OPENED
            for by_pos in steps.values()
            for s in by_pos.values()
        ):
            cursor.execute(
                OPENED_SQL, [ids, members, [r[1] for r in rows], [r[4] for r in rows], now, now]
            )
            opened = {r[0] for r in cursor.fetchall()}
        tag_ids = {c.exit_tag_id for c in campaigns.values() if c.exit_tag_id} | {
            s.tag_id for by_pos in steps.values() for s in by_pos.values() if s.tag_id
        }
        tagged = (
            set(
                MemberTag.objects.filter(member_id__in=members, tag_id__in=tag_ids).values_list(
                    "member_id", "tag_id"
                )
            )
            if tag_ids
            else set()
        )
    quiet_until = after_quiet_hours(now)
    updates: list[tuple[int, str, int, datetime | None, datetime | None, str]] = []
    visits: list[tuple[int, int]] = []
    sends: dict[int, list[int]] = defaultdict(list)
    held: dict[int, list[int]] = defaultdict(list)  # per step: its control-group members
    for eid, cid, mid, position, _entered, control in rows:
        campaign = campaigns[cid]
        by_pos = steps[cid]
        exit_reason = ""
        if mid in opted_out:
            exit_reason = ExitReason.OPTED_OUT
        elif cid in profiling and mid in unprofiled:
            exit_reason = ExitReason.NO_PROFILING
        elif campaign.exit_on_conversion and eid in converted:
            exit_reason = ExitReason.CONVERTED
        elif campaign.exit_tag_id and (mid, campaign.exit_tag_id) in tagged:
            exit_reason = ExitReason.TAGGED
        if exit_reason:
            updates.append((eid, EnrollmentState.EXITED, position, None, now, exit_reason))
            stats.exited[exit_reason] = stats.exited.get(exit_reason, 0) + 1
            continue
        state, next_run = EnrollmentState.ACTIVE, None
        for _hop in range(len(by_pos) + 1):  # forward only: at most one visit per step
            current = by_pos.get(position)
            if current is None or current.kind == StepKind.END:
                if current is not None:
                    visits.append((eid, current.pk))
                state = EnrollmentState.COMPLETED
                break
            if current.kind == StepKind.SEND:
                if quiet_until > now:
                    next_run = quiet_until  # sends wait for the morning
                    break
                visits.append((eid, current.pk))
                sends[current.pk].append(mid)
                if control:
                    held[current.pk].append(mid)
                position += 1
            elif current.kind == StepKind.WAIT:
                visits.append((eid, current.pk))
                position += 1
                next_run = now + timedelta(hours=current.wait_hours or 1)
                break
            else:
                visits.append((eid, current.pk))
                if current.condition == BranchCondition.CONVERTED:
                    yes = eid in converted
                elif current.condition == BranchCondition.OPENED:
                    yes = eid in opened and not control  # the control group got nothing
                else:
                    yes = (mid, current.tag_id) in tagged
                target = current.yes_position if yes else current.no_position
                if target is None:
                    state = EnrollmentState.COMPLETED
                    break
                position = target
        else:
            state = EnrollmentState.COMPLETED  # unreachable with valid steps; never loop
        if state == EnrollmentState.COMPLETED:
            updates.append((eid, state, position, None, now, ""))
            stats.completed += 1
        else:
            updates.append((eid, state, position, next_run, None, ""))
        stats.moved += 1
    with connection.cursor() as cursor:
        if visits:
            cursor.execute(VISITS_SQL, [now, [v[0] for v in visits], [v[1] for v in visits]])
        cursor.execute(
            UPDATE_SQL,
            [
                [u[0] for u in updates],
                [u[1] for u in updates],
                [u[2] for u in updates],
                [u[3] for u in updates],
                [u[4] for u in updates],
                [u[5] for u in updates],
            ],
        )
    step_by_id = {s.pk: s for by_pos in steps.values() for s in by_pos.values()}
    for step_id in sorted(sends):
        step = step_by_id[step_id]
        _wave_add(step, campaigns[step.campaign_id], sends[step_id], now, held.get(step_id))
        stats.sent_to_waves += len(sends[step_id])
    return len(rows)


def journeys_advance(*, now: datetime | None = None, batch: int = BATCH) -> AdvanceStats:
    """Beat, every minute: walk due enrollments on (exit conditions first), a batch per
    transaction. Safe to run twice at once: batches are taken with SKIP LOCKED."""
    now = now or timezone.now()
    _close_ended(now)
    _reopen_waves(now)
    stats = AdvanceStats()
    for _round in range(MAX_BATCHES):
        if _advance_batch(now, batch, stats) < batch:
            break
    return stats


# --- reads --------------------------------------------------------------------------------------


def campaigns_for_user(user: Any) -> QuerySet[Campaign]:
    """Campaigns `user` may see, with their enrollment figures and messages sent."""
    sent = (
        Delivery.objects.filter(broadcast__journey_step__campaign=OuterRef("pk"), status="sent")
        .order_by()
        .values("broadcast__journey_step__campaign")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Campaign.objects.for_user(user)
        .select_related("store", "segment", "created_by")
        .annotate(
            enrolled=Count("enrollments"),
            active=Count("enrollments", filter=Q(enrollments__state=EnrollmentState.ACTIVE)),
            completed=Count("enrollments", filter=Q(enrollments__state=EnrollmentState.COMPLETED)),
            exited=Count("enrollments", filter=Q(enrollments__state=EnrollmentState.EXITED)),
            sent=Coalesce(Subquery(sent), 0),
        )
        .order_by("-created_at", "-pk")
    )


@dataclass
class ProfilingFigures:
    """Members a journey that profiles left out for withdrawn profiling consent."""

    uses_profiling: bool
    not_entered: int  # their trigger fired, but they had withdrawn
    left: int  # on the journey when they withdrew: left it


def campaign_profiling_figures(campaign: Campaign) -> ProfilingFigures:
    return ProfilingFigures(
        uses_profiling=campaign_uses_profiling(campaign),
        not_entered=campaign.profiling_left_out,
        left=JourneyEnrollment.objects.filter(
            campaign=campaign, exit_reason=ExitReason.NO_PROFILING
        ).count(),
    )


@dataclass
class StepFigures:
    step: JourneyStep
    entered: int = 0
    converted: int = 0
    sent: int = 0
    waiting: int = 0
    failed: int = 0
    held_out: int = 0  # the control group: not sent, on purpose
    suppressed: dict[str, int] = field(default_factory=dict)


STEP_CONVERTED_SQL = """
SELECT v.step_id, count(*) FROM campaigns_journeyvisit v
JOIN campaigns_journeyenrollment e ON e.id = v.enrollment_id
WHERE e.campaign_id = %s AND EXISTS (
    SELECT 1 FROM members_order o WHERE o.member_id = e.member_id AND o.paid_at > v.at
    AND o.status <> 'refunded')
GROUP BY v.step_id
"""


def campaign_step_figures(campaign: Campaign) -> list[StepFigures]:
    """Per step: members who reached it, bought after reaching it, and the deliveries of
    its waves by outcome (suppressed by reason)."""
    steps = list(campaign.steps.select_related("material", "tag__group").order_by("position"))
    figures = {s.pk: StepFigures(step=s) for s in steps}
    for step_id, n in (
        JourneyVisit.objects.filter(step__campaign=campaign)
        .values_list("step_id")
        .annotate(n=Count("pk"))
        .values_list("step_id", "n")
    ):
        figures[step_id].entered = n
    with connection.cursor() as cursor:
        cursor.execute(STEP_CONVERTED_SQL, [campaign.pk])
        for step_id, n in cursor.fetchall():
            figures[step_id].converted = n
    for step_id, status, reason, n in (
        Delivery.objects.filter(broadcast__journey_step__campaign=campaign)
        .values_list("broadcast__journey_step_id", "status", "reason")
        .annotate(n=Count("pk"))
        .values_list("broadcast__journey_step_id", "status", "reason", "n")
    ):
        figure = figures[step_id]
        if status == "sent":
            figure.sent += n
        elif status == "planned":
            figure.waiting += n
        elif status == "failed":
            figure.failed += n
        elif status == DeliveryStatus.HELD_OUT:
            figure.held_out += n
        else:
            figure.suppressed[reason] = figure.suppressed.get(reason, 0) + n
    return [figures[s.pk] for s in steps]
