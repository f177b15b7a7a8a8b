"""Tags (标签): groups of tags, and the tags each member carries with where they came from.

A tag group is single-choice (a member holds at most one of its tags, e.g. 肤质) or
multiple-choice (兴趣). A member's tag records its source (staff by hand, an auto-tag
rule, an import, a channel QR code, the API), who added it and when; every add and
remove is also kept in the tag log, so the history survives a removal.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models.member import Member
from scrm.org.scoping import Scope, ScopedQuerySet

MEMBER_SCOPE = Scope(
    store="member__home_store", region=("member__home_store__region",), guide="member__guide"
)


class TagChoice(models.TextChoices):
    SINGLE = "single", _("Single choice")
    MULTIPLE = "multiple", _("Multiple choice")


class TagGroup(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)
    choice = models.CharField(
        _("choice"), max_length=10, choices=TagChoice.choices, default=TagChoice.MULTIPLE
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("tag group")
        verbose_name_plural = _("tag groups")
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    group = models.ForeignKey(
        TagGroup, on_delete=models.PROTECT, related_name="tags", verbose_name=_("group")
    )
    name = models.CharField(_("name"), max_length=50)
    description = models.CharField(_("description"), max_length=200, blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["group__position", "group__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["group", "name"], name="tag_unique_in_group"),
        ]

    def __str__(self) -> str:
        return f"{self.group.name}:{self.name}"


class TagSource(models.TextChoices):
    STAFF = "staff", _("Staff")
    RULE = "rule", _("Auto-tag rule")
    IMPORT = "import", _("Import")
    CHANNEL_QR = "channel_qr", _("Channel QR code")
    API = "api", _("API")


class MemberTag(models.Model):
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="member_tags", verbose_name=_("member")
    )
    tag = models.ForeignKey(
        Tag, on_delete=models.PROTECT, related_name="member_tags", verbose_name=_("tag")
    )
    source = models.CharField(_("source"), max_length=12, choices=TagSource.choices)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("added by"),
    )
    # What added it besides a person: the rule, the import job or the QR code's id.
    source_ref = models.CharField(_("source reference"), max_length=64, blank=True)
    added_at = models.DateTimeField(_("added"))

    scope: ClassVar[Scope] = MEMBER_SCOPE
    objects = ScopedQuerySet["MemberTag"].as_manager()

    class Meta:
        verbose_name = _("member tag")
        verbose_name_plural = _("member tags")
        constraints = [
            # Leads with the tag: "who carries tag X" is the segment engine's question; the
            # member's own tags come through the second index.
            models.UniqueConstraint(fields=["tag", "member"], name="member_tag_unique"),
        ]
        indexes = [models.Index(fields=["member"], name="member_tag_member_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.tag_id}"


class TagAction(models.TextChoices):
    ADD = "add", _("Added")
    REMOVE = "remove", _("Removed")


class TagLogReason(models.TextChoices):
    # A tag an auto-tag rule inferred from behaviour came off: the member withdrew
    # profiling consent (other changes say why through their source).
    NO_PROFILING = "no_profiling", _("Profiling withdrawn")


class MemberTagLog(models.Model):
    """Every add and remove, append-only: who tagged whom, when, and how."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )
    tag = models.ForeignKey(Tag, on_delete=models.PROTECT, related_name="+", verbose_name=_("tag"))
    action = models.CharField(_("action"), max_length=6, choices=TagAction.choices)
    source = models.CharField(_("source"), max_length=12, choices=TagSource.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    source_ref = models.CharField(_("source reference"), max_length=64, blank=True)
    reason = models.CharField(
        _("reason"),
        max_length=20,
        choices=TagLogReason.choices,
        blank=True,
        default="",
        db_default="",
    )
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("tag log entry")
        verbose_name_plural = _("tag log")
        indexes = [models.Index(fields=["member", "-at"], name="member_tag_log_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.action} {self.tag_id}"


class AutoTagRule(models.Model):
    """Tags members who match a rule tree (the segment rule language), kept in step
    as data changes: periodically, after imports, and after a member's new order."""

    name = models.CharField(_("name"), max_length=100)
    tag = models.ForeignKey(
        Tag, on_delete=models.PROTECT, related_name="auto_rules", verbose_name=_("tag")
    )
    rules = models.JSONField(_("rules"))
    active = models.BooleanField(
        _("switched on"), default=False, help_text=_("Preview the count before switching on.")
    )
    remove_when_unmatched = models.BooleanField(
        _("remove when no longer matching"),
        default=True,
        help_text=_("Members who stop matching lose the tag, if this rule gave it to them."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)
    last_added = models.PositiveIntegerField(_("added at last run"), default=0)
    last_removed = models.PositiveIntegerField(_("removed at last run"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("auto-tag rule")
        verbose_name_plural = _("auto-tag rules")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
