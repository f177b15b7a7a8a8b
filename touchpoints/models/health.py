"""Channel health (step 5): each touchpoint's day in figures, kept up to date from the
behaviour events, and the alerts raised when a touchpoint dries up or turns sour."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.org.scoping import Scope, ScopedQuerySet
from touchpoints.models.channels import Touchpoint

TOUCHPOINT_SCOPE = Scope(
    store="touchpoint__store", region=("touchpoint__store__region",), guide=None
)


class TouchpointDay(models.Model):
    """A touchpoint's figures for one local day. Dashboards read these, never the events."""

    touchpoint = models.ForeignKey(
        Touchpoint, on_delete=models.CASCADE, related_name="days", verbose_name=_("touchpoint")
    )
    day = models.DateField(_("day"))
    new_contacts = models.PositiveIntegerField(_("new contacts"), default=0)
    new_members = models.PositiveIntegerField(_("new members"), default=0)
    first_purchases = models.PositiveIntegerField(
        _("first purchases"),
        default=0,
        help_text=_("Contacts of the day whose first purchase came within 30 days."),
    )
    unfollows = models.PositiveIntegerField(_("unfollows"), default=0)
    reviews = models.PositiveIntegerField(_("reviews"), default=0)
    negative_reviews = models.PositiveIntegerField(_("negative reviews"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    scope: ClassVar[Scope] = TOUCHPOINT_SCOPE
    objects = ScopedQuerySet["TouchpointDay"].as_manager()

    class Meta:
        ordering = ["day"]
        verbose_name = _("touchpoint day")
        verbose_name_plural = _("touchpoint days")
        constraints = [
            models.UniqueConstraint(fields=["touchpoint", "day"], name="touchpoint_day_once")
        ]
        indexes = [models.Index(fields=["day"], name="touchpoint_day_idx")]

    def __str__(self) -> str:
        return f"{self.touchpoint_id} {self.day}"


class AlertKind(models.TextChoices):
    INFLOW_DROP = "inflow_drop", _("Inflow dropped")
    NEGATIVE_REVIEWS = "negative_reviews", _("Negative reviews rising")


class AlertStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")


class TouchpointAlert(models.Model):
    touchpoint = models.ForeignKey(
        Touchpoint, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("touchpoint")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=AlertKind.choices)
    day = models.DateField(_("day"))
    value = models.FloatField(_("value"))
    baseline = models.FloatField(_("baseline"))
    status = models.CharField(
        _("status"), max_length=15, choices=AlertStatus.choices, default=AlertStatus.OPEN
    )
    created_at = models.DateTimeField(_("raised at"), auto_now_add=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acknowledged by"),
    )
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)

    scope: ClassVar[Scope] = TOUCHPOINT_SCOPE
    objects = ScopedQuerySet["TouchpointAlert"].as_manager()

    class Meta:
        ordering = ["-day", "-pk"]
        verbose_name = _("touchpoint alert")
        verbose_name_plural = _("touchpoint alerts")
        constraints = [
            models.UniqueConstraint(fields=["touchpoint", "kind", "day"], name="alert_once_a_day")
        ]

    def __str__(self) -> str:
        return f"{self.touchpoint} {self.get_kind_display()} {self.day}"
