from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models.member import LifecycleStage, Member


class LifecycleSettings(models.Model):
    """Brand-wide thresholds for the purchase-based stages. One row (pk=1)."""

    loyal_orders = models.PositiveIntegerField(
        _("orders to be loyal"),
        default=4,
        help_text=_("Customers with this many orders are loyal."),
    )
    sleeping_days = models.PositiveIntegerField(
        _("days to sleeping"),
        default=90,
        help_text=_("Customers with no purchase for this many days are sleeping."),
    )
    churned_days = models.PositiveIntegerField(
        _("days to churned"),
        default=180,
        help_text=_("Customers with no purchase for this many days have churned."),
    )

    class Meta:
        verbose_name = _("lifecycle settings")
        verbose_name_plural = _("lifecycle settings")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(churned_days__gt=models.F("sleeping_days")),
                name="lifecycle_churn_after_sleep",
            ),
            models.CheckConstraint(
                condition=models.Q(loyal_orders__gte=2), name="loyal_at_least_2"
            ),
        ]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)

    @classmethod
    def current(cls) -> LifecycleSettings:
        settings, _created = cls.objects.get_or_create(pk=1)
        return settings


class LifecycleChange(models.Model):
    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="lifecycle_changes",
        verbose_name=_("member"),
    )
    from_stage = models.CharField(
        _("from"), max_length=20, choices=LifecycleStage.choices, blank=True
    )
    to_stage = models.CharField(_("to"), max_length=20, choices=LifecycleStage.choices)
    reason = models.CharField(_("reason"), max_length=100, blank=True)
    changed_at = models.DateTimeField(_("changed at"), db_index=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        verbose_name = _("lifecycle change")
        verbose_name_plural = _("lifecycle changes")
        indexes = [models.Index(fields=["member", "changed_at"], name="lifecycle_member_idx")]

    def __str__(self) -> str:
        return f"{self.from_stage or '—'} → {self.to_stage}"
