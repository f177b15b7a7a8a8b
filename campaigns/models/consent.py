"""The consent ledger (PIPL 个人信息保护法): every consent decision a member made, per
purpose, append-only, with what proves it — when, how, the wording they saw, the channel
it came through and the staff member who assisted. A member's current state per purpose
is their latest entry."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models.messaging import GatewayKind
from members.models import Member


class ConsentPurpose(models.TextChoices):
    MARKETING_INBOX = "marketing_inbox", _("Marketing in the in-app inbox")
    MARKETING_SMS = "marketing_sms", _("Marketing by SMS")
    MARKETING_WECOM = "marketing_wecom", _("Marketing by WeCom")
    MARKETING_SUBSCRIPTION = (
        "marketing_subscription",
        _("Marketing by mini-program subscription message"),
    )
    PROFILING = "profiling", _("Personalised recommendations and profiling")
    SENSITIVE = "sensitive", _("Sensitive personal data (a guardian's consent for a child)")


# The channel each marketing purpose governs. Guide-posted channels (customer groups,
# Moments) send nobody a message of their own, so they have no purpose of their own.
MARKETING_CHANNELS: dict[str, str] = {
    ConsentPurpose.MARKETING_INBOX: GatewayKind.INBOX,
    ConsentPurpose.MARKETING_SMS: GatewayKind.SMS,
    ConsentPurpose.MARKETING_WECOM: GatewayKind.WECOM,
    ConsentPurpose.MARKETING_SUBSCRIPTION: GatewayKind.SUBSCRIPTION,
}
CHANNEL_PURPOSES: dict[str, str] = {
    channel: purpose for purpose, channel in MARKETING_CHANNELS.items()
}


class ConsentSource(models.TextChoices):
    MINI_PROGRAM = "mini_program", _("Mini-program")
    GUIDE = "guide", _("Guide-assisted")
    UNSUBSCRIBE_LINK = "unsubscribe_link", _("Unsubscribe link")
    SMS_REPLY = "sms_reply", _("SMS reply")
    HQ = "hq", _("Head office")
    IMPORT = "import", _("Import")
    # Two members found to be one person: the kept member takes the latest decision of
    # either (and gets their own back when the merge is undone).
    MERGE = "merge", _("Member merge")


class ConsentChannel(models.TextChoices):
    """Where the member told us."""

    MINI_PROGRAM = "mini_program", _("Mini-program")
    STORE = "store", _("In store")
    WECOM = "wecom", _("WeCom chat")
    PHONE = "phone", _("Phone call")
    SMS = "sms", _("SMS")
    INBOX = "inbox", _("In-app inbox")
    BACK_OFFICE = "back_office", _("Back office")
    FILE = "file", _("Imported file")
    PAPER = "paper", _("Paper form")


class ConsentEntry(models.Model):
    """One consent decision. Never changed or deleted: a later decision is a new entry."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="consents", verbose_name=_("member")
    )
    purpose = models.CharField(_("purpose"), max_length=30, choices=ConsentPurpose.choices)
    # True consented, False withdrawn; None: back to no decision (only when undoing a
    # merge gives a member back the "never asked" they had before it).
    granted = models.BooleanField(_("granted"), null=True)
    recorded_at = models.DateTimeField(_("when"), default=timezone.now)
    source = models.CharField(_("how"), max_length=20, choices=ConsentSource.choices)
    channel = models.CharField(_("channel"), max_length=20, choices=ConsentChannel.choices)
    wording_version = models.CharField(_("wording version"), max_length=20)
    assisted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assisted by"),
    )
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        verbose_name = _("consent decision")
        verbose_name_plural = _("consent ledger")
        indexes = [
            # The latest entry per member and purpose: DISTINCT ON (purpose) in this order.
            models.Index(
                fields=["member", "purpose", "-recorded_at", "-id"], name="consent_latest_idx"
            )
        ]

    def __str__(self) -> str:
        mark = "?" if self.granted is None else "+" if self.granted else "-"
        return f"{self.member_id} {self.purpose} {mark}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValueError("The consent ledger is append-only: record a new decision.")
        super().save(*args, **kwargs)

    @property
    def decision(self) -> str:
        if self.granted is None:
            return str(_("No decision"))
        return str(_("Consented") if self.granted else _("Withdrawn"))
