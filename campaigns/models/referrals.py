"""Referrals (裂变): members invite friends with a personal code; when a friend registers,
the inviter and the inviter's inviter earn points — and nobody further up, ever.

Two levels is a hard legal limit (deeper distribution chains count as pyramid selling),
so a Referral row names at most two people to reward and the code has no way to reach a
third.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from members.models import Member

# Levels a reward may reach: 1 = the direct inviter, 2 = the inviter's inviter.
MAX_REFERRAL_LEVELS = 2


class ReferralProgramme(models.Model):
    """What a registration through an invite is worth. One row (pk=1), edited in the admin.

    Off by default: rewards cost the brand points, so HQ decides when the programme runs.
    """

    active = models.BooleanField(
        pgettext_lazy("programme", "active"),
        default=False,
        help_text=_("When off, invite codes cannot be claimed and pending invites earn nothing."),
    )
    level1_points = models.PositiveIntegerField(
        _("points for the inviter"),
        default=100,
        help_text=_("Activity points for the member whose code the new member used."),
    )
    level2_points = models.PositiveIntegerField(
        _("points for the inviter's inviter"),
        default=20,
        help_text=_("Activity points one level up. There is no third level."),
    )
    points_valid_days = models.PositiveIntegerField(
        _("points valid for (days)"),
        null=True,
        blank=True,
        default=365,
        help_text=_("Empty: the reward points never expire."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("referral programme")
        verbose_name_plural = _("referral programme")

    def __str__(self) -> str:
        return str(self._meta.verbose_name)

    @classmethod
    def current(cls) -> ReferralProgramme:
        programme, _created = cls.objects.get_or_create(pk=1)
        return programme


class InviteCode(models.Model):
    """A member's personal invite code, created the first time they ask for it."""

    member = models.OneToOneField(
        Member,
        on_delete=models.CASCADE,
        related_name="invite_code",
        verbose_name=_("member"),
    )
    code = models.CharField(_("invite code"), max_length=12, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("invite code")
        verbose_name_plural = _("invite codes")

    def __str__(self) -> str:
        return self.code


class ReferralStatus(models.TextChoices):
    PENDING = "pending", _("Pending registration")
    CREDITED = "credited", _("Credited")
    REJECTED = "rejected", _("Rejected")


class ReferralRejection(models.TextChoices):
    """Why an invite earned nothing when the invitee registered."""

    PROGRAMME_OFF = "programme_off", _("The referral programme was off at registration")
    PHONE_REPEATED = "phone_repeated", _("The phone number was seen before")
    SELF_INVITE = "self_invite", _("Inviter and invitee turned out to be one person")


class Referral(models.Model):
    """Who invited a member: claimed when they open an invite, credited when they register.

    One per invitee (a person is invited once); a device id appears on one referral only.
    """

    invitee = models.OneToOneField(
        Member,
        on_delete=models.CASCADE,
        related_name="referral",
        verbose_name=_("invitee"),
    )
    inviter = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="referrals_made",
        verbose_name=_("inviter"),
    )
    level2_inviter = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="second_level_referrals",
        verbose_name=_("inviter's inviter"),
    )
    device_id = models.CharField(_("device"), max_length=64)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=ReferralStatus.choices,
        default=ReferralStatus.PENDING,
    )
    rejected_reason = models.CharField(
        _("rejected because"), max_length=20, choices=ReferralRejection.choices, blank=True
    )
    # The keyed digest of the phone (scrm.core.pii.phone_digest), never the number.
    invitee_phone = models.CharField(
        _("invitee's phone digest"),
        max_length=64,
        blank=True,
        help_text=_("Recorded at registration: a phone earns a referral reward only once."),
    )
    level1_points = models.PositiveIntegerField(_("points to inviter"), default=0)
    level2_points = models.PositiveIntegerField(_("points to inviter's inviter"), default=0)
    created_at = models.DateTimeField(_("claimed at"), auto_now_add=True)
    decided_at = models.DateTimeField(_("credited or rejected at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        constraints = [
            models.UniqueConstraint(fields=["device_id"], name="referral_device_once"),
            models.UniqueConstraint(
                fields=["invitee_phone"],
                condition=Q(status=ReferralStatus.CREDITED),
                name="referral_phone_pays_once",
            ),
            models.CheckConstraint(condition=~Q(device_id=""), name="referral_device_required"),
            models.CheckConstraint(condition=~Q(inviter=F("invitee")), name="referral_not_self"),
            models.CheckConstraint(
                condition=Q(level2_inviter__isnull=True)
                | (~Q(level2_inviter=F("invitee")) & ~Q(level2_inviter=F("inviter"))),
                name="referral_level2_distinct",
            ),
        ]
        indexes = [
            models.Index(fields=["inviter", "status"], name="referral_inviter_idx"),
            models.Index(fields=["invitee_phone"], name="referral_phone_idx"),
            models.Index(fields=["level2_inviter", "status"], name="referral_level2_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.inviter_id} → #{self.invitee_id}"
