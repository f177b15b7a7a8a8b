"""Broadcasts (群发): one message to an audience, and one delivery row per (broadcast,
member) — the database, not the broker, decides what was sent."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from campaigns.models.messaging import GatewayKind, Material
from members.models import Member, Segment
from scrm.org.models import Store
from scrm.org.scoping import Scope, ScopedQuerySet


class BroadcastStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PENDING = "pending", _("Waiting for approval")
    APPROVED = "approved", _("Approved")
    SENDING = "sending", _("Sending")
    DONE = "done", _("Sent")
    CANCELLED = "cancelled", _("Cancelled")


class Broadcast(models.Model):
    name = models.CharField(_("name"), max_length=100)
    channel = models.CharField(_("channel"), max_length=20, choices=GatewayKind.choices)
    material = models.ForeignKey(
        Material, on_delete=models.PROTECT, related_name="broadcasts", verbose_name=_("content")
    )
    # Empty only for a journey's wave, whose audience is the members reaching its step.
    segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="broadcasts",
        verbose_name=_("audience"),
        help_text=_("A dynamic segment is evaluated when the broadcast is planned."),
    )
    store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        verbose_name=_("store"),
        help_text=_("A store's own broadcast (needs head office's approval); empty: HQ."),
    )
    status = models.CharField(
        _("status"), max_length=12, choices=BroadcastStatus.choices, default=BroadcastStatus.DRAFT
    )
    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("by")
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("approved by"),
    )
    planned_at = models.DateTimeField(_("planned at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    holdout_percent = models.PositiveSmallIntegerField(
        _("control group (%)"),
        default=0,
        db_default=0,
        validators=[MaxValueValidator(50)],
        help_text=_(
            "A share of the audience, drawn at random, is not sent the message: their "
            "purchases show what would have happened anyway (uplift). 0: no control group."
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
    # A journey's send step sends through one "wave" broadcast per local day: the members
    # who reach the step that day are added to it (see campaigns/services/journeys.py).
    journey_step = models.ForeignKey(
        "campaigns.JourneyStep",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="waves",
        verbose_name=_("journey step"),
    )
    wave_day = models.DateField(_("wave day"), null=True, blank=True)

    scope: ClassVar[Scope] = Scope(store="store", region=("store__region",), guide=None)
    objects = ScopedQuerySet["Broadcast"].as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("broadcast")
        verbose_name_plural = _("broadcasts")
        constraints = [
            models.UniqueConstraint(
                fields=["journey_step", "wave_day"],
                condition=models.Q(journey_step__isnull=False),
                name="broadcast_wave_once",
            )
        ]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PLANNED = "planned", _("Planned")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SUPPRESSED = "suppressed", _("Not sent")
    # In the broadcast's control group: deliberately not sent, to measure uplift.
    HELD_OUT = "held_out", _("Control group")


class SuppressionReason(models.TextChoices):
    OPTED_OUT = "opted_out", _("Opted out")
    FREQUENCY_CAP = "frequency_cap", _("Frequency cap")
    NO_IDENTITY = "no_identity", _("No identity for the channel")
    NOT_FRIEND = "not_friend", _("Not a WeCom friend")
    LIMIT = "limit_reached", _("Monthly limit reached")
    CANCELLED = "cancelled", _("Broadcast cancelled")
    # The audience was chosen by behaviour or RFM, and the member withdrew profiling.
    NO_PROFILING = "no_profiling", _("Profiling withdrawn")


class Delivery(models.Model):
    """One member's copy of a broadcast. Planned set-based at once; each is sent at most
    once (the row is locked while it is sent, and the gateway is asked before a resend)."""

    id = models.BigAutoField(primary_key=True)
    broadcast = models.ForeignKey(
        Broadcast, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    member = models.ForeignKey(
        Member, on_delete=models.DO_NOTHING, db_constraint=False, related_name="deliveries"
    )
    channel = models.CharField(max_length=20, choices=GatewayKind.choices)
    send_day = models.DateField(_("send day"))
    status = models.CharField(
        _("status"), max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PLANNED
    )
    reason = models.CharField(
        _("reason"), max_length=20, choices=SuppressionReason.choices, blank=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # After a transient failure: not taken again, nor re-queued by the sweeper, before this.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_ref = models.CharField(max_length=100, blank=True)
    error = models.CharField(max_length=200, blank=True)
    # First time the member opened the message (read it in the inbox, or followed its
    # tracked link) and first time they followed its tracked link.
    opened_at = models.DateTimeField(_("opened"), null=True, blank=True)
    clicked_at = models.DateTimeField(_("clicked"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "member"], name="delivery_once")
        ]
        indexes = [
            models.Index(fields=["broadcast", "status", "id"], name="delivery_queue_idx"),
            # Frequency caps count a member's deliveries by day and month.
            models.Index(fields=["member", "send_day"], name="delivery_member_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.broadcast_id}→{self.member_id} {self.status}"


class GuideSendTask(models.Model):
    """WeCom group messages go out through a guide: the API puts a task in the guide's
    WeCom (群发助手) that they confirm there. This is that task on /m/ — the content and
    the guide's customers it goes to (the broadcast's WeCom deliveries of members whose
    guide they are) — and its completion."""

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="guide_tasks")
    guide = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("guide"),
    )
    recipients = models.PositiveIntegerField(_("customers"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # Guide-posted channels (customer groups, Moments): when the post was handed to WeCom
    # for this guide, and WeCom's id for it.
    handed_at = models.DateTimeField(null=True, blank=True)
    provider_ref = models.CharField(max_length=100, blank=True)
    # Tries so far, and why WeCom refused for good (the guide then has no task).
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=100, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)

    scope: ClassVar[Scope] = Scope(
        store="guide__stores", region=("guide__stores__region",), guide="guide", distinct=True
    )
    objects = ScopedQuerySet["GuideSendTask"].as_manager()

    class Meta:
        ordering = ["confirmed_at", "-created_at", "-pk"]
        verbose_name = _("guide send task")
        verbose_name_plural = _("guide send tasks")
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "guide"], name="guide_task_once")
        ]

    def __str__(self) -> str:
        return f"{self.broadcast_id}/{self.guide_id}"
