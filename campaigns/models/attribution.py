"""Attribution (全监控): which message an order is credited to. An order paid by a member
within the attribution window after a message was sent to them converts that message —
the last one sent before the order (last touch) — and is credited to its broadcast (or
journey wave and campaign), channel, the order's store and guide, and the touchpoint the
member was first won through."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from campaigns.models.broadcasts import Broadcast, Delivery
from campaigns.models.journeys import Campaign
from members.models import Order
from scrm.org.models import Store
from scrm.org.scoping import Scope, ScopedQuerySet
from touchpoints.models import Touchpoint


class AttributionSetting(models.Model):
    """One row: the window and how far the incremental refresh has read."""

    window_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"),
        default=7,
        help_text=_("An order this many days after a message converts it."),
    )
    # Orders recorded up to here have been attributed (recorded, not paid: an import of
    # last month's orders is attributed too).
    read_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("attribution setting")
        verbose_name_plural = _("attribution settings")

    def __str__(self) -> str:
        return str(_("Attribution window: %(days)s days") % {"days": self.window_days})

    @classmethod
    def current(cls) -> AttributionSetting:
        setting, _created = cls.objects.get_or_create(pk=1)
        return setting


class Conversion(models.Model):
    """An order credited to the last message its member was sent within the window."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="conversion")
    member_id = models.BigIntegerField()
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="+")
    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="conversions")
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, null=True, blank=True, related_name="conversions"
    )
    channel = models.CharField(_("channel"), max_length=20)
    store = models.ForeignKey(Store, on_delete=models.SET_NULL, null=True, blank=True)
    guide = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The touchpoint the member first came in through (QR code, store, ad …), so campaign
    # revenue can be read back to where the converted customers were won.
    touchpoint = models.ForeignKey(
        Touchpoint,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acquired through"),
    )
    revenue = models.DecimalField(_("revenue"), max_digits=12, decimal_places=2)
    touched_at = models.DateTimeField(_("message sent"))
    converted_at = models.DateTimeField(_("order paid"))

    # Scoped by the order's store: a manager sees what their stores' sales owe to messages.
    scope: ClassVar[Scope] = Scope(store="store", region=("store__region",), guide="guide")
    objects = ScopedQuerySet["Conversion"].as_manager()

    class Meta:
        verbose_name = _("conversion")
        verbose_name_plural = _("conversions")
        indexes = [
            models.Index(fields=["broadcast", "converted_at"], name="conversion_broadcast_idx"),
            models.Index(fields=["campaign", "converted_at"], name="conversion_campaign_idx"),
            # The board's "orders attributed this week" and its weekly trend.
            models.Index(fields=["converted_at"], name="conversion_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} → {self.broadcast_id}"
