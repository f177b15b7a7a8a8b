"""The campaign funnel (全监控), kept as facts the pages read instead of the deliveries:
per broadcast (a journey's wave included), the member's store and guide, the channel,
and the local day and hour it was sent — audience → not sent (by reason) → control
group → sent → failed → opened → clicked → converted → revenue.

Rebuilt per broadcast by `campaigns.services.funnel.funnel_refresh` for the broadcasts
that changed since its last run (sends, opens, clicks, conversions, refunds), so the
figures are at most one refresh behind and a page never counts a million deliveries."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from campaigns.models.broadcasts import Broadcast
from campaigns.models.journeys import Campaign, JourneyStep
from scrm.org.models import Store
from scrm.org.scoping import Scope, ScopedQuerySet
from touchpoints.models import Touchpoint


class FunnelFact(models.Model):
    id = models.BigAutoField(primary_key=True)
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    journey_step = models.ForeignKey(
        JourneyStep, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    channel = models.CharField(_("channel"), max_length=20)
    # The recipient's home store and guide when the facts were counted.
    store = models.ForeignKey(
        Store, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    guide = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    # Local day and hour sent; for a message never sent, the day it was planned for and
    # no hour.
    day = models.DateField(_("day"))
    hour = models.PositiveSmallIntegerField(_("hour"), null=True, blank=True)
    audience = models.PositiveIntegerField(_("audience"), default=0)
    opted_out = models.PositiveIntegerField(_("opted out"), default=0)
    frequency_cap = models.PositiveIntegerField(_("frequency cap"), default=0)
    no_identity = models.PositiveIntegerField(_("no identity for the channel"), default=0)
    not_friend = models.PositiveIntegerField(_("not a WeCom friend"), default=0)
    limit_reached = models.PositiveIntegerField(_("monthly limit reached"), default=0)
    cancelled = models.PositiveIntegerField(_("cancelled"), default=0)
    held_out = models.PositiveIntegerField(_("control group"), default=0)
    waiting = models.PositiveIntegerField(_("waiting to send"), default=0)
    sent = models.PositiveIntegerField(_("sent"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    opened = models.PositiveIntegerField(_("opened"), default=0)
    clicked = models.PositiveIntegerField(_("clicked"), default=0)
    converted = models.PositiveIntegerField(_("orders converted"), default=0)
    revenue = models.DecimalField(
        _("revenue"), max_digits=14, decimal_places=2, default=Decimal("0")
    )
    # Uplift, for broadcasts with a control group: members who bought within the
    # attribution window after they were sent the message — or, in the control group,
    # after they would have been — whatever message (if any) the order is credited to,
    # and what they spent then. Both groups counted alike; zero without a control group.
    sent_buyers = models.PositiveIntegerField(_("buyers among those sent"), default=0)
    sent_buyer_revenue = models.DecimalField(
        _("their spend"), max_digits=14, decimal_places=2, default=Decimal("0")
    )
    control_buyers = models.PositiveIntegerField(_("buyers in the control group"), default=0)
    control_revenue = models.DecimalField(
        _("control group spend"), max_digits=14, decimal_places=2, default=Decimal("0")
    )

    scope: ClassVar[Scope] = Scope(store="store", region=("store__region",), guide="guide")
    objects = ScopedQuerySet["FunnelFact"].as_manager()

    class Meta:
        verbose_name = _("funnel figure")
        verbose_name_plural = _("funnel figures")
        indexes = [
            models.Index(fields=["broadcast"], name="funnel_broadcast_idx"),
            models.Index(fields=["campaign", "day"], name="funnel_campaign_idx"),
            models.Index(fields=["day"], name="funnel_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.broadcast_id} {self.day} {self.store_id}/{self.guide_id}"


class ConversionFact(models.Model):
    """Orders converted and their revenue per broadcast × the order's store and guide ×
    the local day the message was sent × the touchpoint the customer was first won
    through — the funnel pages' "where the customers were won" table, rebuilt with the
    broadcast's funnel facts so the page never reads the conversions themselves."""

    id = models.BigAutoField(primary_key=True)
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    store = models.ForeignKey(
        Store, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    guide = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    day = models.DateField(_("day the message was sent"))
    touchpoint = models.ForeignKey(
        Touchpoint, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    orders = models.PositiveIntegerField(_("orders converted"), default=0)
    revenue = models.DecimalField(
        _("revenue"), max_digits=14, decimal_places=2, default=Decimal("0")
    )

    # As the conversions are: by the order's store.
    scope: ClassVar[Scope] = Scope(store="store", region=("store__region",), guide="guide")
    objects = ScopedQuerySet["ConversionFact"].as_manager()

    class Meta:
        verbose_name = _("conversion figure")
        verbose_name_plural = _("conversion figures")
        indexes = [
            models.Index(fields=["broadcast"], name="conversionfact_broadcast_idx"),
            models.Index(fields=["campaign", "day"], name="conversionfact_campaign_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.broadcast_id} {self.day} {self.touchpoint_id}: {self.orders}"


class FunnelState(models.Model):
    """One row: up to when the funnel refresh has read changes."""

    read_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("funnel refresh state")
        verbose_name_plural = _("funnel refresh state")

    def __str__(self) -> str:
        return f"funnel read until {self.read_until}"

    @classmethod
    def current(cls) -> FunnelState:
        state, _created = cls.objects.get_or_create(pk=1)
        return state
