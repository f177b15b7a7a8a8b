from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models.member import Member


class SuggestionStatus(models.TextChoices):
    OPEN = "open", _("Waiting for review")
    MERGED = "merged", _("Merged")
    DISMISSED = "dismissed", _("Not the same person")


class MergeSuggestion(models.Model):
    """Two members that identities say may be one person. Nothing merges until staff decide."""

    member_a = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="+", verbose_name=_("member A")
    )
    member_b = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="+", verbose_name=_("member B")
    )
    reason = models.CharField(_("reason"), max_length=200)
    evidence = models.JSONField(_("evidence"), default=list, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=SuggestionStatus.choices, default=SuggestionStatus.OPEN
    )
    created_at = models.DateTimeField(_("raised at"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("merge suggestion")
        verbose_name_plural = _("merge suggestions")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(member_a__lt=models.F("member_b")), name="suggestion_ordered"
            ),
            models.UniqueConstraint(
                fields=["member_a", "member_b"],
                condition=models.Q(status="open"),
                name="suggestion_one_open_per_pair",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.member_a_id} ≟ #{self.member_b_id}"


class MemberMerge(models.Model):
    """One merge: what moved from `dropped` into `kept`, so it can be undone exactly."""

    kept = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="merges_kept", verbose_name=_("kept")
    )
    dropped = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="merges_dropped",
        verbose_name=_("merged away"),
    )
    suggestion = models.ForeignKey(
        MergeSuggestion,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("suggestion"),
    )
    moved = models.JSONField(_("moved rows"), default=dict)
    kept_before = models.JSONField(_("kept member before"), default=dict)
    dropped_before = models.JSONField(_("merged member before"), default=dict)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("merged by"),
    )
    merged_at = models.DateTimeField(_("merged at"), auto_now_add=True)
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("undone by"),
    )

    class Meta:
        ordering = ["-merged_at", "-pk"]
        verbose_name = _("member merge")
        verbose_name_plural = _("member merges")

    def __str__(self) -> str:
        return f"#{self.dropped_id} → #{self.kept_id}"
