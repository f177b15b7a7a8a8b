"""What is sent and through what: the material library (素材库), message gateways (the
sandbox records every call), members' marketing opt-outs, and frequency caps."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models import Member
from scrm.org.models import Store


class GatewayKind(models.TextChoices):
    WECOM = "wecom", _("WeCom group message")
    SMS = "sms", _("SMS")
    SUBSCRIPTION = "subscription", _("Mini-program subscription message")
    INBOX = "inbox", _("In-app inbox")
    WECOM_GROUPS = "wecom_groups", _("WeCom customer groups (posted by guides)")
    WECOM_MOMENTS = "wecom_moments", _("WeCom Moments (posted by guides)")


# Channels a guide posts once for all their customers — to their customer groups or their
# Moments — rather than a message per member: the audience is the guides, and members'
# caps and opt-outs do not apply (nobody receives a message of their own).
GUIDE_POSTED = (GatewayKind.WECOM_GROUPS, GatewayKind.WECOM_MOMENTS)


class MaterialKind(models.TextChoices):
    TEXT = "text", _("Text")
    IMAGE = "image", _("Image")
    LINK = "link", _("Link card")
    MINI_PROGRAM = "mini_program", _("Mini-program card")


class Material(models.Model):
    """A reusable message. Text may hold per-recipient variables: {name}, {tier},
    {points}, {guide}."""

    kind = models.CharField(_("kind"), max_length=20, choices=MaterialKind.choices)
    title = models.CharField(_("title"), max_length=100)
    body = models.TextField(_("text"), max_length=2000, blank=True)
    image_url = models.URLField(_("image"), blank=True)
    link_url = models.URLField(_("link"), blank=True)
    mini_program_path = models.CharField(_("mini-program page"), max_length=200, blank=True)
    quick_reply = models.BooleanField(
        _("quick reply for guides"), default=False, help_text=_("Offered to guides on /m/.")
    )
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("store")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("material")
        verbose_name_plural = _("materials")

    def __str__(self) -> str:
        return self.title


class MarketingOptOut(models.Model):
    """A member who said no to marketing on one channel (blank: on every channel)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="opt_outs")
    channel = models.CharField(_("channel"), max_length=20, choices=GatewayKind.choices, blank=True)
    created_at = models.DateTimeField(_("since"), auto_now_add=True)

    class Meta:
        verbose_name = _("marketing opt-out")
        verbose_name_plural = _("marketing opt-outs")
        constraints = [models.UniqueConstraint(fields=["member", "channel"], name="opt_out_once")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.channel or '*'}"


class FrequencyRule(models.Model):
    """How many marketing messages a member may get a day and a month, on one channel
    (blank: across every channel). Every campaign shares them."""

    channel = models.CharField(
        _("channel"), max_length=20, choices=GatewayKind.choices, blank=True, unique=True
    )
    per_day = models.PositiveIntegerField(_("per day"), null=True, blank=True)
    per_month = models.PositiveIntegerField(_("per month"), null=True, blank=True)

    class Meta:
        verbose_name = _("frequency cap")
        verbose_name_plural = _("frequency caps")
        constraints = [
            models.CheckConstraint(
                condition=Q(per_day__isnull=False) | Q(per_month__isnull=False),
                name="frequency_rule_has_a_cap",
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel or '*'}: {self.per_day}/day {self.per_month}/month"


class SandboxCall(models.Model):
    """Every call the sandbox gateway received, written on its own connection so it
    survives a crash of the sender (as a message that left would). Never deduplicated."""

    gateway = models.CharField(max_length=20, choices=GatewayKind.choices)
    member_id = models.BigIntegerField()
    key = models.CharField(max_length=100, db_index=True)
    content = models.TextField(blank=True)
    outcome = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox call")
        verbose_name_plural = _("sandbox calls")
        indexes = [models.Index(fields=["member_id", "created_at"], name="sandbox_member_idx")]

    def __str__(self) -> str:
        return f"{self.gateway} {self.key} {self.outcome}"


class FaultKind(models.TextChoices):
    TRANSIENT = "transient", _("Transient error")
    TIMEOUT = "timeout", _("Timeout")
    LIMIT = "limit_reached", _("Limit reached")
    NOT_FRIEND = "not_friend", _("Not a friend")


class SandboxFault(models.Model):
    """Make the sandbox answer the next `times` calls (for a member, or anyone) with a
    failure, to test retries and refusals."""

    gateway = models.CharField(max_length=20, choices=GatewayKind.choices)
    member_id = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=20, choices=FaultKind.choices)
    times = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = _("sandbox fault")
        verbose_name_plural = _("sandbox faults")

    def __str__(self) -> str:
        return f"{self.gateway} {self.kind} ×{self.times}"


class InboxMessage(models.Model):
    """A message in a member's in-app inbox (the mini-program's message centre). Written
    in the sender's transaction under a unique key, so a resend is a no-op."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="inbox", verbose_name=_("member")
    )
    key = models.CharField(max_length=100, unique=True)
    title = models.CharField(_("title"), max_length=100)
    body = models.TextField(_("text"), max_length=2000)
    link_url = models.URLField(_("link"), blank=True)
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("inbox message")
        verbose_name_plural = _("inbox messages")
        indexes = [models.Index(fields=["member", "created_at"], name="inbox_member_idx")]

    def __str__(self) -> str:
        return self.title


class GatewayThrottle(models.Model):
    """A provider's rate limit, shared by every worker process: each call reserves its
    slot by moving `free_at` forward, and waits for it. No row: no limit (our own inbox)."""

    gateway = models.CharField(
        _("gateway"), max_length=20, choices=GatewayKind.choices, unique=True
    )
    per_second = models.PositiveIntegerField(_("messages a second"))
    free_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("gateway rate limit")
        verbose_name_plural = _("gateway rate limits")

    def __str__(self) -> str:
        return f"{self.gateway} ≤ {self.per_second}/s"
