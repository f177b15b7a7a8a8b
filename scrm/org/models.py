from __future__ import annotations

from typing import ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.core.models import TimeStampedModel
from scrm.org.permissions import ROLE_PERMISSIONS
from scrm.org.scoping import HQ_ROLES, Role, Scope, ScopedQuerySet

AUDIT_PERMISSION = "audit.view_auditevent"


class Region(TimeStampedModel):
    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)

    scope: ClassVar[Scope] = Scope(store=None, region=("",))
    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        verbose_name = _("region")
        verbose_name_plural = _("regions")

    def __str__(self) -> str:
        return self.name


class Store(TimeStampedModel):
    region = models.ForeignKey(
        Region, on_delete=models.PROTECT, related_name="stores", verbose_name=_("region")
    )
    code = models.SlugField(_("store code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    city = models.CharField(_("city"), max_length=50)
    address = models.CharField(_("address"), max_length=200, blank=True)
    is_active = models.BooleanField(_("open"), default=True)

    scope: ClassVar[Scope] = Scope(store="", region=("region",))
    objects = ScopedQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")

    def __str__(self) -> str:
        return self.name


class StaffQuerySet(ScopedQuerySet["Staff"]):
    def guides(self) -> StaffQuerySet:
        return self.filter(role=Role.GUIDE, is_active=True)


class StaffManager(UserManager.from_queryset(StaffQuerySet)):  # type: ignore[misc]
    pass


class Staff(AbstractUser):
    """A person who signs in: HQ staff, region and store managers, and store guides."""

    role = models.CharField(_("role"), max_length=20, choices=Role.choices, blank=True)
    region = models.ForeignKey(
        Region,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="managers",
        verbose_name=_("region"),
        help_text=_("The region a region manager runs."),
    )
    stores = models.ManyToManyField(
        Store,
        blank=True,
        related_name="staff",
        verbose_name=_("stores"),
        help_text=_("The stores a store manager runs, or the store a guide works in."),
    )
    display_name = models.CharField(_("display name"), max_length=50, blank=True)
    phone = models.CharField(_("work phone"), max_length=20, blank=True)

    scope: ClassVar[Scope] = Scope(
        store="stores", region=("stores__region", "region"), guide="", distinct=True
    )
    objects = StaffManager()  # type: ignore[misc]

    class Meta:
        ordering = ["username"]
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def is_hq(self) -> bool:
        return self.is_superuser or self.role in HQ_ROLES

    @property
    def can_use_hq(self) -> bool:
        """HQ staff and managers work in /hq/; guides work on their phones in /m/."""
        return self.is_active and (
            self.is_hq or self.role in {Role.REGION_MANAGER, Role.STORE_MANAGER}
        )

    @property
    def can_use_mobile(self) -> bool:
        return self.is_active and self.role in {Role.GUIDE, Role.STORE_MANAGER}

    @property
    def can_view_audit(self) -> bool:
        """The audit trail (/hq/audit/): head office with its permission, which the HQ
        admin role carries (scrm/org/permissions.py) and others are granted one by one.
        The role is checked first: the side navigation asks on every page."""
        if not (self.is_active and self.is_hq):
            return False
        if self.is_superuser or AUDIT_PERMISSION in ROLE_PERMISSIONS.get(self.role, ()):
            return True
        return self.has_perm(AUDIT_PERMISSION)

    @property
    def landing_url_name(self) -> str:
        return "hq:home" if self.can_use_hq else "mobile:home"
