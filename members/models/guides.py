"""Store guides and their customers: who is responsible for whom (and since when, and why),
the guide's service notes, follow-up tasks, and products' repurchase cycles."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models.member import Member
from scrm.org.models import Store
from scrm.org.scoping import Scope, ScopedQuerySet

MEMBER_SCOPE = Scope(
    store="member__home_store", region=("member__home_store__region",), guide="member__guide"
)


class AssignmentReason(models.TextChoices):
    QR_CODE = "qr_code", _("Scanned the guide's channel QR code")
    PURCHASE = "purchase", _("Store purchase with the guide's code")
    MANAGER = "manager", _("Assigned by a manager")
    ROUND_ROBIN = "round_robin", _("Round-robin from the store pool")
    TRANSFER = "transfer", _("Transfer while in post (在职继承)")
    DEPARTURE = "departure", _("Departed guide's handover (离职继承)")
    POOL = "pool", _("Back to the store pool")
    IMPORT = "import", _("Import")


# Reasons that bring a guide a new customer (first time, or from the store pool): these are
# welcomed and counted as "new this month". Transfers, handovers and imports are not — the
# customer already knows the brand.
NEW_CUSTOMER_REASONS = (
    AssignmentReason.QR_CODE,
    AssignmentReason.PURCHASE,
    AssignmentReason.MANAGER,
    AssignmentReason.ROUND_ROBIN,
)


class GuideAssignment(models.Model):
    """One change of a member's responsible guide, kept for good: the history a new guide
    reads, and what the WeCom transfer limit counts."""

    member = models.ForeignKey(
        Member,
        on_delete=models.CASCADE,
        related_name="guide_assignments",
        verbose_name=_("member"),
    )
    from_guide = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("from guide"),
    )
    to_guide = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("to guide"),
    )
    store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("store"),
    )
    reason = models.CharField(_("reason"), max_length=20, choices=AssignmentReason.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    scope: ClassVar[Scope] = MEMBER_SCOPE
    objects = ScopedQuerySet["GuideAssignment"].as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("guide assignment")
        verbose_name_plural = _("guide assignments")
        indexes = [
            models.Index(fields=["member", "created_at"], name="assignment_member_idx"),
            # The welcome sweep reads the last day's assignments every few minutes.
            models.Index(fields=["created_at"], name="assignment_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.from_guide_id} → {self.to_guide_id}"


class NoteKind(models.TextChoices):
    NOTE = "note", _("Note")
    CALL = "call", _("Phone call")
    WECHAT = "wechat", _("WeChat chat")
    VISIT = "visit", _("Store visit")


class ServiceNote(models.Model):
    """What a guide noted about serving a customer. Notes stay with the member, so the
    next guide reads them all."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="service_notes", verbose_name=_("member")
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("author"),
    )
    kind = models.CharField(
        _("kind"), max_length=10, choices=NoteKind.choices, default=NoteKind.NOTE
    )
    body = models.TextField(_("note"), max_length=1000)
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    scope: ClassVar[Scope] = MEMBER_SCOPE
    objects = ScopedQuerySet["ServiceNote"].as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("service note")
        verbose_name_plural = _("service notes")
        indexes = [models.Index(fields=["member", "created_at"], name="note_member_idx")]

    def __str__(self) -> str:
        return self.body[:40]


class TaskKind(models.TextChoices):
    WELCOME = "welcome", _("Welcome a new customer")
    REPURCHASE = "repurchase", _("Repurchase reminder")
    CHURN = "churn", _("Churn warning")
    BIRTHDAY = "birthday", _("Birthday")
    HQ = "hq", _("Task from HQ")


class TaskStatus(models.TextChoices):
    OPEN = "open", _("To do")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class TaskOutcome(models.TextChoices):
    REACHED = "reached", _("Talked to the customer")
    MESSAGED = "messaged", _("Sent a message")
    VISIT_BOOKED = "visit_booked", _("Visit booked")
    PURCHASED = "purchased", _("Bought again")
    NO_ANSWER = "no_answer", _("No answer")
    DECLINED = "declined", _("Not interested")


class FollowUpTask(models.Model):
    """Something a guide should do for one customer by a day. Created by the nightly
    follow-up sweep (each at most once, through `source_key`) or by HQ."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="follow_ups", verbose_name=_("member")
    )
    guide = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="follow_ups",
        verbose_name=_("guide"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=TaskKind.choices)
    title = models.CharField(_("task"), max_length=200)
    detail = models.CharField(_("detail"), max_length=500, blank=True)
    # Figures behind a generated task (last purchase, usual interval, classes…), shown by
    # the page in the reader's language.
    facts = models.JSONField(_("facts"), default=dict, blank=True)
    due_on = models.DateField(_("due"))
    status = models.CharField(
        _("status"), max_length=10, choices=TaskStatus.choices, default=TaskStatus.OPEN
    )
    outcome = models.CharField(_("outcome"), max_length=20, choices=TaskOutcome.choices, blank=True)
    outcome_note = models.CharField(_("outcome note"), max_length=500, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("done by"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    # What made the task, e.g. "birthday:2026:42": the sweep inserts with ON CONFLICT DO
    # NOTHING on it, so running the sweep twice creates nothing new.
    source_key = models.CharField(_("source"), max_length=80, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    scope: ClassVar[Scope] = Scope(
        store="member__home_store", region=("member__home_store__region",), guide="guide"
    )
    objects = ScopedQuerySet["FollowUpTask"].as_manager()

    class Meta:
        ordering = ["due_on", "pk"]
        verbose_name = _("follow-up task")
        verbose_name_plural = _("follow-up tasks")
        constraints = [
            models.UniqueConstraint(
                fields=["source_key"], condition=~Q(source_key=""), name="task_source_unique"
            ),
            models.CheckConstraint(
                condition=Q(status="done", done_at__isnull=False, outcome__gt="")
                | ~Q(status="done"),
                name="task_done_has_outcome",
            ),
        ]
        indexes = [
            models.Index(fields=["guide", "status", "due_on"], name="task_guide_due_idx"),
            models.Index(fields=["member", "status"], name="task_member_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_overdue(self) -> bool:
        return self.status == TaskStatus.OPEN and self.due_on < timezone.localdate()


class RepurchaseCycle(models.Model):
    """How many days a product (by SKU) or a whole category usually lasts a customer: the
    repurchase reminder falls due that long after the purchase. A SKU's cycle wins over
    its category's."""

    sku = models.CharField(_("SKU"), max_length=64, blank=True)
    category = models.CharField(_("category"), max_length=100, blank=True)
    days = models.PositiveIntegerField(_("days"))

    class Meta:
        ordering = ["category", "sku"]
        verbose_name = _("repurchase cycle")
        verbose_name_plural = _("repurchase cycles")
        constraints = [
            models.CheckConstraint(
                condition=(Q(sku="") & ~Q(category="")) | (~Q(sku="") & Q(category="")),
                name="cycle_sku_or_category",
            ),
            models.CheckConstraint(
                condition=Q(days__gte=1) & Q(days__lte=730), name="cycle_days_range"
            ),
            models.UniqueConstraint(fields=["sku"], condition=~Q(sku=""), name="cycle_sku"),
            models.UniqueConstraint(
                fields=["category"], condition=~Q(category=""), name="cycle_category"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku or self.category}: {self.days}"
