"""Segments (人群): a rule tree over members, evaluated when used (dynamic) or frozen
into a list (static), with a size history. The rule language lives in
`members/segments/`; this module only stores it."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models.member import Member
from scrm.org.scoping import Scope, ScopedQuerySet


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", _("Dynamic (evaluated when used)")
    STATIC = "static", _("Static (a frozen list)")


class SegmentRefresh(models.TextChoices):
    MANUAL = "manual", _("By hand")
    DAILY = "daily", _("Daily")
    HOURLY = "hourly", _("Hourly")


class Segment(models.Model):
    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=300, blank=True)
    kind = models.CharField(
        _("kind"), max_length=10, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC
    )
    rules = models.JSONField(_("rules"))
    refresh = models.CharField(
        _("refresh"), max_length=10, choices=SegmentRefresh.choices, default=SegmentRefresh.DAILY
    )
    # A store's own segment (store managers build them for their store); null = head office.
    store = models.ForeignKey(
        "org.Store",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("store"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    size = models.PositiveIntegerField(_("size"), null=True, blank=True)
    sized_at = models.DateTimeField(_("size counted"), null=True, blank=True)
    frozen_at = models.DateTimeField(_("frozen"), null=True, blank=True)
    archived = models.BooleanField(_("archived"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    # Head office sees every segment; store staff see head office's and their stores'.
    scope: ClassVar[Scope] = Scope(store="store", region=("store__region",), guide=None)
    objects = ScopedQuerySet["Segment"].as_manager()

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_uploaded_list(self) -> bool:
        """An uploaded list has no rules to re-run: its members are the file's."""
        return isinstance(self.rules, dict) and self.rules.get("source") == "upload"


class SegmentMember(models.Model):
    """A static segment's frozen members."""

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="frozen_members", verbose_name=_("segment")
    )
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )

    class Meta:
        verbose_name = _("segment member")
        verbose_name_plural = _("segment members")
        constraints = [
            models.UniqueConstraint(fields=["segment", "member"], name="segment_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.segment_id}:{self.member_id}"


class SegmentSize(models.Model):
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="sizes", verbose_name=_("segment")
    )
    at = models.DateTimeField(_("at"))
    size = models.PositiveIntegerField(_("size"))

    class Meta:
        verbose_name = _("segment size")
        verbose_name_plural = _("segment sizes")
        ordering = ["-at"]
        indexes = [models.Index(fields=["segment", "-at"], name="segment_size_idx")]

    def __str__(self) -> str:
        return f"{self.segment_id} {self.at:%Y-%m-%d %H:%M} {self.size}"
