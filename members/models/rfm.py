"""RFM (recency, frequency, monetary) and the value matrix.

Per member we keep only facts: orders and net spend inside the window, and the last
purchase. They are kept current incrementally: every write that changes a member's
orders marks the member dirty in the same transaction, and a frequent task recounts
just those members (index range scans), so a new order never means rescanning the
pool. The window moving forward each night marks the members whose oldest counted
order fell out of it.

Scores are not stored: each is the number of cut points a member's figure passes
(R, F, M each 1–5), and the cut points are either HQ's thresholds or the quintiles of
the current buyers, recomputed nightly. A class (重要价值客户 …) is high or low on each of
R, F, M. Segments and the RFM page evaluate scores and classes from the facts and the
cut points, so they are right the moment a member's facts change.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models.member import Member


class RfmMethod(models.TextChoices):
    QUINTILE = "quintile", _("Quintiles of current buyers")
    THRESHOLDS = "thresholds", _("Fixed thresholds")


class RfmClass(models.TextChoices):
    # (R, F, M) high (H) or low (L); the classic eight classes.
    IMPORTANT_VALUE = "HHH", "重要价值客户"
    IMPORTANT_DEVELOP = "HLH", "重要发展客户"
    IMPORTANT_KEEP = "LHH", "重要保持客户"
    IMPORTANT_RETAIN = "LLH", "重要挽留客户"
    GENERAL_VALUE = "HHL", "一般价值客户"
    GENERAL_DEVELOP = "HLL", "一般发展客户"
    GENERAL_KEEP = "LHL", "一般保持客户"
    GENERAL_RETAIN = "LLL", "一般挽留客户"


class ValueCell(models.TextChoices):
    """The value matrix: engagement (activity points) against spend (growth value)."""

    CORE = "core", _("Engaged big spenders")  # 高活跃 · 高价值
    FANS = "fans", _("Engaged, small spend (KOC-like)")  # 高活跃 · 低价值
    QUIET_SPENDERS = "quiet_spenders", _("Quiet big spenders")  # 低活跃 · 高价值
    ORDINARY = "ordinary", _("Ordinary")  # 低活跃 · 低价值


def _default_r() -> list[int]:
    return [30, 90, 180, 365]


def _default_f() -> list[int]:
    return [1, 2, 3, 5]


def _default_m() -> list[int]:
    return [200, 500, 1000, 3000]


class RfmSettings(models.Model):
    """Brand-wide RFM and value-matrix settings. One row (pk=1)."""

    window_days = models.PositiveIntegerField(
        _("window (days)"),
        default=365,
        help_text=_("Frequency and spend count orders paid within this many days."),
    )
    method = models.CharField(
        _("scoring"), max_length=12, choices=RfmMethod.choices, default=RfmMethod.QUINTILE
    )
    r_thresholds = ArrayField(
        models.PositiveIntegerField(),
        size=4,
        default=_default_r,
        verbose_name=_("recency cut points (days)"),
        help_text=_("Four day counts, rising: at most the first scores 5, beyond the last 1."),
    )
    f_thresholds = ArrayField(
        models.PositiveIntegerField(),
        size=4,
        default=_default_f,
        verbose_name=_("frequency cut points (orders)"),
        help_text=_("Four order counts, rising: more than the last scores 5."),
    )
    m_thresholds = ArrayField(
        models.PositiveIntegerField(),
        size=4,
        default=_default_m,
        verbose_name=_("spend cut points (¥)"),
        help_text=_("Four amounts, rising: more than the last scores 5."),
    )
    high_score = models.PositiveSmallIntegerField(
        _("high from score"),
        default=3,
        help_text=_("A score at least this high counts as high (重要/价值) in the classes."),
    )
    activity_high = models.PositiveIntegerField(
        _("high activity points"),
        default=500,
        help_text=_("Value matrix: members with at least this many activity points are engaged."),
    )
    growth_high = models.PositiveIntegerField(
        _("high growth value"),
        default=2000,
        help_text=_("Value matrix: members with at least this much growth value spend big."),
    )
    # Cut points in force (the thresholds above, or the buyers' quintiles at `scored_at`).
    r_cuts = ArrayField(models.IntegerField(), size=4, default=_default_r)
    f_cuts = ArrayField(models.IntegerField(), size=4, default=_default_f)
    m_cuts = ArrayField(
        models.DecimalField(max_digits=14, decimal_places=2), size=4, default=_default_m
    )
    scored_at = models.DateTimeField(_("cut points computed"), null=True, blank=True)
    # Orders paid on or before this moment are outside the window.
    window_start = models.DateTimeField(_("window starts"), null=True, blank=True)

    class Meta:
        verbose_name = _("RFM settings")
        verbose_name_plural = _("RFM settings")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(high_score__gte=1, high_score__lte=5), name="rfm_high_1_to_5"
            ),
            models.CheckConstraint(condition=models.Q(window_days__gte=1), name="rfm_window_1"),
        ]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)

    @classmethod
    def current(cls) -> RfmSettings:
        settings, _created = cls.objects.get_or_create(pk=1)
        return settings


class MemberRfm(models.Model):
    """A buyer's facts inside the window. No row: no purchase in the window."""

    # No foreign-key constraint: these are derived facts, rebuilt in bulk, and a check per
    # row at commit was a fifth of a full recompute. Recounts drop rows of members who no
    # longer buy; erasing a member deletes theirs explicitly.
    member = models.OneToOneField(
        Member,
        on_delete=models.DO_NOTHING,
        primary_key=True,
        related_name="rfm",
        verbose_name=_("member"),
        db_constraint=False,
    )
    frequency = models.PositiveIntegerField(_("orders in window"))
    monetary = models.DecimalField(_("spend in window"), max_digits=14, decimal_places=2)
    last_order_at = models.DateTimeField(_("last purchase"))
    first_in_window = models.DateTimeField(_("oldest order in window"))
    # The class at the last nightly review, to see movement between classes.
    rfm_class = models.CharField(_("class"), max_length=3, choices=RfmClass.choices, blank=True)
    class_since = models.DateField(_("class since"), null=True, blank=True)
    # The class before the last change: a drop (fewer H scores) warns the member's guide.
    previous_class = models.CharField(
        _("previous class"),
        max_length=3,
        choices=RfmClass.choices,
        blank=True,
        default="",
        db_default="",
    )

    class Meta:
        verbose_name = _("member RFM")
        verbose_name_plural = _("member RFM")
        indexes = [models.Index(fields=["first_in_window"], name="rfm_window_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} F{self.frequency} M{self.monetary}"


class RfmDirty(models.Model):
    """Members whose orders changed since their RFM facts were counted."""

    member_id = models.BigIntegerField(primary_key=True)

    class Meta:
        verbose_name = _("RFM recount queue")
        verbose_name_plural = _("RFM recount queue")

    def __str__(self) -> str:
        return str(self.member_id)


class RfmMovement(models.Model):
    """How many members moved from one class to another at a nightly review."""

    day = models.DateField(_("day"))
    from_class = models.CharField(_("from"), max_length=3, blank=True)  # "" = no purchase
    to_class = models.CharField(_("to"), max_length=3, blank=True)
    members = models.PositiveIntegerField(_("members"))

    class Meta:
        verbose_name = _("RFM class movement")
        verbose_name_plural = _("RFM class movements")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "from_class", "to_class"], name="rfm_movement_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.from_class}→{self.to_class} {self.members}"


class RfmNewOrder(models.Model):
    """Orders recorded since the facts were counted: their members' facts grow by a delta
    (no recount of their history). Refunds and merges queue the member in RfmDirty."""

    order_id = models.BigIntegerField(primary_key=True)

    class Meta:
        verbose_name = _("RFM new-order queue")
        verbose_name_plural = _("RFM new-order queue")

    def __str__(self) -> str:
        return str(self.order_id)
