"""Campaigns (营销活动) and their automated journeys (自动化旅程).

A campaign is made from a template (welcome, birthday, win-back …): a goal, an
audience (optional segment, optional store), a window, a trigger that starts members on
the journey, exit conditions, and ordered steps — send, wait, branch.

- `JourneyStep`: steps are numbered 1…n. A send or a wait goes on to the next position;
  a branch jumps to its yes/no position (empty: the journey ends there); an end step
  ends it (so a branch's path can stop before the steps of another path). Branches only
  jump forward, so every walk ends: no step is visited twice by one enrollment.
- `JourneyEnrollment`: one member's walk through the journey. A partial unique index
  on (campaign, member) WHERE state = 'active' keeps a member from being in the same
  journey twice at once; a member who completed or left may enter again later.
- `JourneyVisit`: which steps each enrollment reached (one row per enrollment and step,
  for the per-step figures on the campaign page).

Messages are not sent here: a send step adds the member to the day's "wave" — a
`Broadcast` per (step, local day) — whose deliveries go through the broadcast machinery
(exactly once per (wave, member), opt-outs and frequency caps shared with every
broadcast, checked when planned and again when sent).
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from campaigns.models.messaging import GatewayKind, Material
from members.models import Member, Segment, Tag
from scrm.org.models import Store
from scrm.org.scoping import Scope, ScopedQuerySet


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ACTIVE = "active", _("Active")
    PAUSED = "paused", _("Paused")
    ENDED = "ended", _("Ended")


class TriggerKind(models.TextChoices):
    REGISTERED = "registered", _("Registered as a member")
    FIRST_PURCHASE = "first_purchase", _("First purchase")
    BIRTHDAY = "birthday", _("Birthday coming")
    NO_PURCHASE_DAYS = "no_purchase_days", _("Days without a purchase")
    TIER_UP = "tier_up", _("Tier upgrade")
    CART_ABANDONED = "cart_abandoned", _("Cart abandoned")
    AUDIENCE = "audience", _("Everyone in the audience when the campaign starts")


class Campaign(models.Model):
    """A campaign and its journey. Drafted by head office or a store manager (a store's
    campaign reaches only its members); activated by head office."""

    name = models.CharField(_("name"), max_length=100)
    template = models.CharField(_("template"), max_length=30)
    goal = models.TextField(_("goal"), max_length=500, blank=True)
    segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("audience"),
        help_text=_("Empty: every member. Members must be in it when they would enter."),
    )
    store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("store"),
        help_text=_("A store's campaign reaches only its members; empty: head office."),
    )
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    status = models.CharField(
        _("status"), max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    trigger = models.CharField(_("trigger"), max_length=20, choices=TriggerKind.choices)
    trigger_params = models.JSONField(_("trigger settings"), default=dict, blank=True)
    exit_on_conversion = models.BooleanField(
        _("leave when converted"),
        default=False,
        help_text=_("A paid order after entering ends the member's journey."),
    )
    exit_tag = models.ForeignKey(
        Tag,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("leave when tagged"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("by")
    )
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("activated by"),
    )
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    holdout_percent = models.PositiveSmallIntegerField(
        _("control group (%)"),
        default=0,
        db_default=0,
        validators=[MaxValueValidator(50)],
        help_text=_(
            "A share of those entering, drawn at random, is sent nothing: their purchases "
            "show what would have happened anyway (uplift). 0: no control group."
        ),
    )
    cost = models.DecimalField(
        _("cost (yuan)"),
        max_digits=12,
        decimal_places=2,
        default=Decimal("0"),
        db_default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("What it cost — message fees, coupons, design — to show its ROI."),
    )
    # Triggers are read for the time since this moment on each enrollment run.
    last_enrolled_at = models.DateTimeField(null=True, blank=True)
    # Members whose trigger fired but who did not enter because the journey profiles its
    # members and they had withdrawn profiling consent (a tally over the runs).
    profiling_left_out = models.PositiveIntegerField(
        _("left out: profiling withdrawn"), default=0, db_default=0
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    scope: ClassVar[Scope] = Scope(store="store", region=("store__region",), guide=None)
    objects = ScopedQuerySet["Campaign"].as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        indexes = [models.Index(fields=["status"], name="campaign_status_idx")]

    def __str__(self) -> str:
        return self.name


class StepKind(models.TextChoices):
    SEND = "send", _("Send a message")
    WAIT = "wait", _("Wait")
    BRANCH = "branch", _("Branch")
    END = "end", _("End the journey")


class BranchCondition(models.TextChoices):
    CONVERTED = "converted", _("Bought since entering")
    OPENED = "opened", _("Read an in-app message of this campaign")
    HAS_TAG = "has_tag", _("Carries a tag")


class JourneyStep(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(_("step"))
    kind = models.CharField(_("kind"), max_length=10, choices=StepKind.choices)
    # send
    channel = models.CharField(_("channel"), max_length=20, choices=GatewayKind.choices, blank=True)
    material = models.ForeignKey(
        Material,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="journey_steps",
        verbose_name=_("content"),
    )
    # wait
    wait_hours = models.PositiveIntegerField(_("wait (hours)"), null=True, blank=True)
    # branch
    condition = models.CharField(
        _("condition"), max_length=12, choices=BranchCondition.choices, blank=True
    )
    tag = models.ForeignKey(
        Tag,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("tag"),
    )
    yes_position = models.PositiveSmallIntegerField(_("if yes, go to"), null=True, blank=True)
    no_position = models.PositiveSmallIntegerField(_("if no, go to"), null=True, blank=True)

    class Meta:
        ordering = ["campaign", "position"]
        verbose_name = _("journey step")
        verbose_name_plural = _("journey steps")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "position"], name="journey_step_once"),
            models.CheckConstraint(condition=Q(position__gte=1), name="journey_step_from_one"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}#{self.position} {self.kind}"


class EnrollmentState(models.TextChoices):
    ACTIVE = "active", _("On the journey")
    COMPLETED = "completed", _("Completed")
    EXITED = "exited", pgettext_lazy("journey", "Left")


class ExitReason(models.TextChoices):
    CONVERTED = "converted", _("Bought")
    TAGGED = "tagged", _("Carries the exit tag")
    OPTED_OUT = "opted_out", _("Opted out of marketing")
    # The journey profiles its members (behaviour trigger or audience) and they withdrew
    # profiling consent.
    NO_PROFILING = "no_profiling", _("Profiling withdrawn")
    CAMPAIGN_ENDED = "campaign_ended", _("Campaign ended")


class JourneyEnrollment(models.Model):
    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="enrollments", db_index=False
    )
    member = models.ForeignKey(
        Member,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="journey_enrollments",
        verbose_name=_("member"),
    )
    state = models.CharField(
        _("state"),
        max_length=10,
        choices=EnrollmentState.choices,
        default=EnrollmentState.ACTIVE,
    )
    # In the campaign's control group: walks the journey like the others, but its sends
    # are held back (delivery status "control group"), to measure uplift.
    control = models.BooleanField(_("control group"), default=False, db_default=False)
    # The step to run next (for a finished enrollment: where it was when it finished).
    position = models.PositiveSmallIntegerField(_("step"), default=1)
    next_run_at = models.DateTimeField(_("next step at"), null=True, blank=True)
    entered_at = models.DateTimeField(_("entered"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    exit_reason = models.CharField(
        _("left because"), max_length=20, choices=ExitReason.choices, blank=True
    )

    class Meta:
        ordering = ["-entered_at", "-id"]
        verbose_name = _("journey enrollment")
        verbose_name_plural = _("journey enrollments")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "member"],
                condition=Q(state="active"),
                name="enrollment_active_once",
            )
        ]
        indexes = [
            models.Index(fields=["state", "next_run_at"], name="enrollment_due_idx"),
            models.Index(fields=["campaign", "state"], name="enrollment_campaign_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.member_id} {self.state}"


class JourneyVisit(models.Model):
    """An enrollment reached a step (at most once: branches only jump forward)."""

    id = models.BigAutoField(primary_key=True)
    enrollment = models.ForeignKey(
        JourneyEnrollment, on_delete=models.CASCADE, related_name="visits", db_index=False
    )
    step = models.ForeignKey(JourneyStep, on_delete=models.CASCADE, related_name="visits")
    at = models.DateTimeField()

    class Meta:
        verbose_name = _("journey visit")
        verbose_name_plural = _("journey visits")
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="journey_visit_once")
        ]

    def __str__(self) -> str:
        return f"{self.enrollment_id}@{self.step_id}"
