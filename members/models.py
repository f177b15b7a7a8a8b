"""The member pool. This is the core record; identities, merge, orders and the 360° profile
build on it (see DESIGN.md step 1)."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.core.models import TimeStampedModel
from scrm.org.models import Store
from scrm.org.scoping import Scope, ScopedQuerySet


class Gender(models.TextChoices):
    UNKNOWN = "u", _("Unknown")
    FEMALE = "f", _("Female")
    MALE = "m", _("Male")


class LifecycleStage(models.TextChoices):
    PROSPECT = "prospect", _("Prospect")
    PRIVATE = "private", _("Private-domain user")
    MEMBER = "member", _("Member")


class Member(TimeStampedModel):
    name = models.CharField(_("name"), max_length=50, blank=True)
    gender = models.CharField(
        _("gender"), max_length=1, choices=Gender.choices, default=Gender.UNKNOWN
    )
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    phone = models.CharField(
        _("phone"),
        max_length=20,
        blank=True,
        db_index=True,
        help_text=_("E.164, e.g. +8613812341234"),
    )
    city = models.CharField(_("city"), max_length=50, blank=True)
    home_store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="members",
        verbose_name=_("home store"),
    )
    guide = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="customers",
        verbose_name=_("guide"),
    )
    lifecycle_stage = models.CharField(
        _("lifecycle stage"),
        max_length=20,
        choices=LifecycleStage.choices,
        default=LifecycleStage.PROSPECT,
    )
    source_channel = models.CharField(_("source channel"), max_length=30, blank=True)

    scope: ClassVar[Scope] = Scope(
        store="home_store", region=("home_store__region",), guide="guide"
    )
    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("member")
        verbose_name_plural = _("members")
        indexes = [models.Index(fields=["created_at"], name="member_created_idx")]

    def __str__(self) -> str:
        return self.name or self.masked_phone or f"#{self.pk}"

    @property
    def masked_phone(self) -> str:
        """138****1234: the form shown wherever the viewer may not see full numbers."""
        digits = self.phone.removeprefix("+86")
        if len(digits) < 7:
            return "*" * len(digits)
        return f"{digits[:3]}****{digits[-4:]}"
