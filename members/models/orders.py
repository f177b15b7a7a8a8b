from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models.member import Channel, Member
from scrm.org.models import Store
from scrm.org.scoping import Scope, ScopedQuerySet


class OrderStatus(models.TextChoices):
    PAID = "paid", _("Paid")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")


class Order(models.Model):
    channel = models.CharField(_("channel"), max_length=30, choices=Channel.choices)
    external_id = models.CharField(_("order number"), max_length=64)
    # No index of its own: order_member_paid_idx (member, paid_at) serves every lookup by
    # member, and one index fewer makes bulk order imports faster.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("member"),
        db_index=False,
    )
    store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("store"),
    )
    guide = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credited_orders",
        verbose_name=_("credited guide"),
        help_text=_("The guide in charge when the order was paid; kept after transfers."),
    )
    paid_at = models.DateTimeField(_("paid at"))
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    refunded_amount = models.DecimalField(
        _("refunded"),
        max_digits=12,
        decimal_places=2,
        default=Decimal("0"),
        db_default=Decimal("0"),
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=OrderStatus.choices,
        default=OrderStatus.PAID,
        db_default=OrderStatus.PAID,
    )
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True)

    scope: ClassVar[Scope] = Scope(
        store="member__home_store",
        region=("member__home_store__region",),
        guide="member__guide",
    )
    objects = ScopedQuerySet["Order"].as_manager()

    class Meta:
        ordering = ["-paid_at", "-pk"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="order_unique"),
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="order_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(refunded_amount__gte=0)
                & models.Q(refunded_amount__lte=models.F("amount")),
                name="order_refund_within_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "paid_at"], name="order_member_paid_idx"),
            # Refunds are a few percent of orders: the dashboards recount the last 90 days
            # of them every few minutes without reading the other orders.
            models.Index(
                fields=["paid_at"],
                condition=models.Q(refunded_amount__gt=0),
                name="order_refunded_paid_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.external_id}"

    @property
    def net_amount(self) -> Decimal:
        return self.amount - self.refunded_amount


class OrderLine(models.Model):
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order")
    )
    sku = models.CharField(_("SKU"), max_length=64)
    product_name = models.CharField(_("product"), max_length=200)
    category = models.CharField(_("category"), max_length=100, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    amount = models.DecimalField(_("line amount"), max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["pk"]
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")

    def __str__(self) -> str:
        return f"{self.product_name} × {self.quantity}"
