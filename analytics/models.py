"""Daily aggregates behind the dashboards.

Every table is small (days × stores × a handful of values) and keyed by the member's home
store: `store` NULL holds members without one, which only head office sees. The pages
read these tables only, never members, orders or the ledger (see analytics/services.py
for how they are kept up to date).
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.org.models import Store
from scrm.org.scoping import Scope, ScopedQuerySet

STORE_SCOPE = Scope(store="store", region=("store__region",), guide=None)


def _store() -> models.ForeignKey[Store | None, Store | None]:
    return models.ForeignKey(
        Store,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("home store"),
    )


class SnapshotDimension(models.TextChoices):
    STAGE = "stage", _("Lifecycle stage")
    TIER = "tier", _("Tier")
    RFM = "rfm", _("RFM class")
    # Members carrying at least one tag ("yes") or none ("no"): the board's tag coverage.
    TAGGED = "tagged", _("Tagged")


class PoolDay(models.Model):
    """Members created (new contacts) and members who joined (reached the 'member'
    stage) on one local day, per home store and source channel."""

    day = models.DateField(_("day"))
    store = _store()
    channel = models.CharField(_("source channel"), max_length=30, blank=True)
    new_contacts = models.PositiveIntegerField(_("new contacts"), default=0, db_default=0)
    new_members = models.PositiveIntegerField(_("new members"), default=0, db_default=0)

    scope: ClassVar[Scope] = STORE_SCOPE
    objects = ScopedQuerySet["PoolDay"].as_manager()

    class Meta:
        verbose_name = _("pool day")
        verbose_name_plural = _("pool days")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "store", "channel"],
                name="analytics_poolday_key",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.store_id} {self.channel}"


class LifecycleFlowDay(models.Model):
    """How many members moved from one lifecycle stage to another on one local day."""

    day = models.DateField(_("day"))
    store = _store()
    from_stage = models.CharField(_("from"), max_length=20, blank=True)
    to_stage = models.CharField(_("to"), max_length=20)
    members = models.PositiveIntegerField(_("members"), default=0, db_default=0)

    scope: ClassVar[Scope] = STORE_SCOPE
    objects = ScopedQuerySet["LifecycleFlowDay"].as_manager()

    class Meta:
        verbose_name = _("lifecycle flow day")
        verbose_name_plural = _("lifecycle flow days")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "store", "from_stage", "to_stage"],
                name="analytics_flowday_key",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.from_stage}→{self.to_stage}"


class SnapshotDay(models.Model):
    """The pool's distribution over stages, tiers or RFM classes as it stood on a day
    (taken through the day; the last taking of the day stays)."""

    day = models.DateField(_("day"))
    store = _store()
    dimension = models.CharField(_("dimension"), max_length=10, choices=SnapshotDimension.choices)
    value = models.CharField(
        _("value"), max_length=30, blank=True, help_text=_("Stage, tier id or RFM class.")
    )
    members = models.PositiveIntegerField(_("members"), default=0, db_default=0)

    scope: ClassVar[Scope] = STORE_SCOPE
    objects = ScopedQuerySet["SnapshotDay"].as_manager()

    class Meta:
        verbose_name = _("distribution snapshot")
        verbose_name_plural = _("distribution snapshots")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "store", "dimension", "value"],
                name="analytics_snapshot_key",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["dimension", "day"], name="analytics_snapshot_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.dimension}={self.value}"


class RfmMoveDay(models.Model):
    """Members whose RFM class changed at the nightly review of a day, per home store
    (from members' current and previous class; "" = first class)."""

    day = models.DateField(_("day"))
    store = _store()
    from_class = models.CharField(_("from"), max_length=3, blank=True)
    to_class = models.CharField(_("to"), max_length=3, blank=True)
    members = models.PositiveIntegerField(_("members"), default=0, db_default=0)

    scope: ClassVar[Scope] = STORE_SCOPE
    objects = ScopedQuerySet["RfmMoveDay"].as_manager()

    class Meta:
        verbose_name = _("RFM movement day")
        verbose_name_plural = _("RFM movement days")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "store", "from_class", "to_class"],
                name="analytics_rfmmove_key",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.from_class}→{self.to_class}"


class PointsDay(models.Model):
    """Activity points (the spendable account) per local day: issued, redeemed and
    expired as positive figures, adjustments and reversals as one signed figure, and the
    outstanding balance at the day's snapshot (the liability)."""

    day = models.DateField(_("day"))
    store = _store()
    issued = models.BigIntegerField(_("issued"), default=0, db_default=0)
    redeemed = models.BigIntegerField(_("redeemed"), default=0, db_default=0)
    expired = models.BigIntegerField(_("expired"), default=0, db_default=0)
    adjusted = models.BigIntegerField(_("adjusted"), default=0, db_default=0)
    outstanding = models.BigIntegerField(_("outstanding"), null=True, blank=True)

    scope: ClassVar[Scope] = STORE_SCOPE
    objects = ScopedQuerySet["PointsDay"].as_manager()

    class Meta:
        verbose_name = _("points day")
        verbose_name_plural = _("points days")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "store"], name="analytics_pointsday_key", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.store_id}"


class SalesDay(models.Model):
    """Orders by the local day they were paid, per home store and order channel. Revenue
    is gross; `refunded` is what was refunded of them (recounted for recent days)."""

    day = models.DateField(_("day"))
    store = _store()
    channel = models.CharField(_("channel"), max_length=30)
    orders = models.PositiveIntegerField(_("orders"), default=0, db_default=0)
    revenue = models.DecimalField(
        _("revenue"), max_digits=16, decimal_places=2, default=Decimal("0"), db_default=Decimal("0")
    )
    refunded = models.DecimalField(
        _("refunded"),
        max_digits=16,
        decimal_places=2,
        default=Decimal("0"),
        db_default=Decimal("0"),
    )
    first_orders = models.PositiveIntegerField(_("first orders"), default=0, db_default=0)

    scope: ClassVar[Scope] = STORE_SCOPE
    objects = ScopedQuerySet["SalesDay"].as_manager()

    class Meta:
        verbose_name = _("sales day")
        verbose_name_plural = _("sales days")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "store", "channel"],
                name="analytics_salesday_key",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.store_id} {self.channel}"


class CohortMonth(models.Model):
    """Buyers and revenue of an acquisition cohort (members created in a month, by source
    channel and home store) in the calendar month `months_after` months later. A buyer
    counts once per month however often they buy."""

    cohort = models.DateField(_("cohort month"), help_text=_("First day of the month."))
    channel = models.CharField(_("source channel"), max_length=30, blank=True)
    store = _store()
    months_after = models.PositiveSmallIntegerField(_("months after"))
    buyers = models.PositiveIntegerField(_("buyers"), default=0, db_default=0)
    revenue = models.DecimalField(
        _("revenue"), max_digits=16, decimal_places=2, default=Decimal("0"), db_default=Decimal("0")
    )
    refunded = models.DecimalField(
        _("refunded"),
        max_digits=16,
        decimal_places=2,
        default=Decimal("0"),
        db_default=Decimal("0"),
    )

    scope: ClassVar[Scope] = STORE_SCOPE
    objects = ScopedQuerySet["CohortMonth"].as_manager()

    class Meta:
        verbose_name = _("cohort month")
        verbose_name_plural = _("cohort months")
        constraints = [
            models.UniqueConstraint(
                fields=["cohort", "channel", "store", "months_after"],
                name="analytics_cohort_key",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.cohort} +{self.months_after}"


class Cursor(models.Model):
    """How far each incremental read has got: rows recorded before `read_until` are in
    the aggregates. The row is locked while a read moves it, so two runs never overlap."""

    name = models.CharField(_("name"), max_length=30, unique=True)
    read_until = models.DateTimeField(_("read until"))
    id_floor = models.BigIntegerField(
        _("id floor"),
        default=0,
        help_text=_("Every source row with an id up to this was recorded before read_until."),
    )

    class Meta:
        verbose_name = _("aggregate cursor")
        verbose_name_plural = _("aggregate cursors")

    def __str__(self) -> str:
        return f"{self.name} @ {self.read_until}"
