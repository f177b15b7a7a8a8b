"""Experience feedback (X-data): satisfaction and NPS surveys, their answers, the problem
categories they are filed under, and the tickets (工单) a negative answer opens."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import Member, Order
from scrm.org.models import Store
from scrm.org.scoping import Scope, ScopedQuerySet

STORE_SCOPE = Scope(store="store", region=("store__region",), guide=None)


class SurveyKind(models.TextChoices):
    SATISFACTION = "satisfaction", _("Satisfaction (1–5 stars)")
    NPS = "nps", _("NPS (0–10)")


class SurveyTrigger(models.TextChoices):
    AFTER_PURCHASE = "after_purchase", _("After a purchase")
    CAMPAIGN = "campaign", _("Sent by a campaign")


class Survey(models.Model):
    name = models.CharField(_("name"), max_length=80)
    kind = models.CharField(_("kind"), max_length=20, choices=SurveyKind.choices)
    trigger = models.CharField(_("trigger"), max_length=20, choices=SurveyTrigger.choices)
    question = models.CharField(_("question"), max_length=200)
    comment_prompt = models.CharField(_("comment prompt"), max_length=200, blank=True)
    delay_hours = models.PositiveIntegerField(
        _("hours after the purchase"),
        default=24,
        help_text=_("For after-purchase surveys: when the invitation goes out."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")

    def __str__(self) -> str:
        return self.name

    def is_negative(self, score: int) -> bool:
        """1–2 stars, or an NPS detractor (0–6)."""
        return score <= 2 if self.kind == SurveyKind.SATISFACTION else score <= 6

    @property
    def score_range(self) -> tuple[int, int]:
        return (1, 5) if self.kind == SurveyKind.SATISFACTION else (0, 10)


class QuestionKind(models.TextChoices):
    RATING = "rating", _("Rating 1–5")
    CHOICE = "choice", _("One choice")
    TEXT = "text", _("Free text")


class SurveyQuestion(models.Model):
    """A further question after the survey's score question (what the member bought it
    for, how they heard of us, what to improve…)."""

    survey = models.ForeignKey(
        Survey, on_delete=models.CASCADE, related_name="questions", verbose_name=_("survey")
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    text = models.CharField(_("question"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=QuestionKind.choices)
    choices = models.JSONField(
        _("choices"), default=list, blank=True, help_text=_("For one-choice questions.")
    )
    required = models.BooleanField(_("required"), default=False)

    class Meta:
        ordering = ["survey", "position", "pk"]
        verbose_name = _("survey question")
        verbose_name_plural = _("survey questions")

    def __str__(self) -> str:
        return self.text


class FeedbackCategory(models.Model):
    """A kind of problem (service attitude, product quality, delivery…), and the
    department its tickets go to when no store is involved."""

    name = models.CharField(_("name"), max_length=40, unique=True)
    department = models.CharField(_("department"), max_length=40, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("feedback category")
        verbose_name_plural = _("feedback categories")

    def __str__(self) -> str:
        return self.name


class SurveyInvitation(models.Model):
    """A survey waiting for one member's answer (shown in the mini-program)."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="invitations")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="survey_invitations")
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    store = models.ForeignKey(Store, on_delete=models.SET_NULL, null=True, blank=True)
    guide = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    sent_at = models.DateTimeField(_("sent at"))
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("survey invitation")
        verbose_name_plural = _("survey invitations")
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "order"],
                condition=Q(order__isnull=False),
                name="one_invitation_per_order",
            )
        ]
        indexes = [models.Index(fields=["member", "answered_at"], name="invitation_member_idx")]

    def __str__(self) -> str:
        return f"{self.survey} → {self.member_id}"


class SurveyResponse(models.Model):
    invitation = models.OneToOneField(
        SurveyInvitation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="response",
    )
    survey = models.ForeignKey(
        Survey, on_delete=models.PROTECT, related_name="responses", verbose_name=_("survey")
    )
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="survey_responses", verbose_name=_("member")
    )
    store = models.ForeignKey(
        Store, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("store")
    )
    guide = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("guide"),
    )
    order = models.ForeignKey(
        Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    score = models.SmallIntegerField(_("score"))
    comment = models.TextField(_("comment"), max_length=1000, blank=True)
    categories = models.ManyToManyField(
        FeedbackCategory, blank=True, related_name="responses", verbose_name=_("categories")
    )
    negative = models.BooleanField(_("negative"), default=False)
    # The further questions' answers: question id (as text) → rating, choice or text.
    answers = models.JSONField(_("answers"), default=dict, blank=True)
    submitted_at = models.DateTimeField(_("submitted at"))

    scope: ClassVar[Scope] = STORE_SCOPE
    objects = ScopedQuerySet["SurveyResponse"].as_manager()

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        verbose_name = _("survey response")
        verbose_name_plural = _("survey responses")
        indexes = [models.Index(fields=["submitted_at"], name="response_submitted_idx")]

    def __str__(self) -> str:
        return f"{self.survey}: {self.score}"


class TicketStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_PROGRESS = "in_progress", _("In progress")
    RESOLVED = "resolved", _("Resolved")


class TicketSource(models.TextChoices):
    SURVEY = "survey", _("Survey answer")
    REVIEW = "review", _("Review")


class Ticket(models.Model):
    """A customer's problem to solve (工单), routed to a store or a department."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="tickets", verbose_name=_("member")
    )
    store = models.ForeignKey(
        Store,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("store"),
    )
    department = models.CharField(_("department"), max_length=40, blank=True)
    category = models.ForeignKey(
        FeedbackCategory,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("category"),
    )
    source = models.CharField(_("source"), max_length=10, choices=TicketSource.choices)
    response = models.OneToOneField(
        SurveyResponse, on_delete=models.SET_NULL, null=True, blank=True, related_name="ticket"
    )
    # The review event (no constraint: events are bulk-written); one ticket per review.
    event_id = models.BigIntegerField(_("review event"), null=True, blank=True, unique=True)
    subject = models.CharField(_("subject"), max_length=200)
    detail = models.TextField(_("detail"), max_length=2000, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("assignee"),
    )
    status = models.CharField(
        _("status"), max_length=15, choices=TicketStatus.choices, default=TicketStatus.OPEN
    )
    due_at = models.DateTimeField(_("due"))
    resolution = models.TextField(_("resolution"), max_length=2000, blank=True)
    created_at = models.DateTimeField(_("opened"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    scope: ClassVar[Scope] = STORE_SCOPE
    objects = ScopedQuerySet["Ticket"].as_manager()

    class Meta:
        ordering = ["status", "due_at", "pk"]
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        indexes = [models.Index(fields=["status", "due_at"], name="ticket_status_due_idx")]

    def __str__(self) -> str:
        return self.subject


class TicketNote(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(_("note"), max_length=2000)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("ticket note")
        verbose_name_plural = _("ticket notes")

    def __str__(self) -> str:
        return self.body[:40]
