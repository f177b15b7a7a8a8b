"""The member: one person, however many ways they reach the brand (DESIGN.md step 1)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import ClassVar

from cryptography.exceptions import InvalidTag
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scrm.core.models import TimeStampedModel
from scrm.core.pii import (
    mask_last4,
    open_phone,
    phone_columns,
    phone_digests,
    previous_keys_configured,
)
from scrm.org.models import Store
from scrm.org.scoping import Scope, ScopedQuerySet


class Gender(models.TextChoices):
    UNKNOWN = "u", _("Unknown")
    FEMALE = "f", _("Female")
    MALE = "m", _("Male")


class LifecycleStage(models.TextChoices):
    """Where a person stands: reached → follows us → joined → buys → drifts away."""

    PROSPECT = "prospect", _("Prospect")
    PRIVATE = "private", _("Private-domain user")
    MEMBER = "member", _("Member")
    NEW = "new", _("New customer")
    REPEAT = "repeat", _("Repeat customer")
    LOYAL = "loyal", _("Loyal customer")
    SLEEPING = "sleeping", _("Sleeping")
    CHURNED = "churned", _("Churned")


class Channel(models.TextChoices):
    STORE = "store", _("Store")
    POS = "pos", _("Store POS")
    MINI_PROGRAM = "mini_program", _("Mini-program")
    OFFICIAL_ACCOUNT = "official_account", _("Official account")
    WECOM = "wecom", _("WeCom")
    TMALL = "tmall", _("Tmall")
    JD = "jd", _("JD")
    MEITUAN = "meituan", _("Meituan")
    DOUYIN = "douyin", _("Douyin")
    IMPORT = "import", _("Import")
    OTHER = "other", _("Other")


# PIPL treats the personal information of a child under 14 as sensitive: processing it
# needs a guardian's consent.
CHILD_AGE = 14


def age_on(birthday: date, day: date) -> int:
    """Full years from `birthday` to `day` (someone born on 29 February turns a year
    older on 1 March in common years)."""
    return day.year - birthday.year - ((day.month, day.day) < (birthday.month, birthday.day))


class MemberQuerySet(ScopedQuerySet["Member"]):
    pass


class ActiveMemberManager(models.Manager["Member"]):
    """Members still in the pool: one merged into another is kept (for undo) but hidden."""

    def get_queryset(self) -> MemberQuerySet:
        return MemberQuerySet(self.model, using=self._db).filter(merged_into__isnull=True)

    def for_user(self, user: object) -> MemberQuerySet:
        return self.get_queryset().for_user(user)


class Member(TimeStampedModel):
    name = models.CharField(_("name"), max_length=50, blank=True)
    gender = models.CharField(
        _("gender"),
        max_length=1,
        choices=Gender.choices,
        default=Gender.UNKNOWN,
        db_default=Gender.UNKNOWN,
    )
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    # The phone is never stored in plain text (scrm/core/pii.py): a keyed digest answers
    # lookups, the last four digits are shown and searched, the sealed copy is opened
    # only to send a message or for an audited "show full number". No index on any of
    # them: full-number lookups go through the phone identity's index, and a last-four
    # search runs within a user's scope (a guide's customers, a store's members).
    phone_digest = models.CharField(
        _("phone digest"), max_length=64, blank=True, default="", db_default=""
    )
    phone_last4 = models.CharField(
        _("phone, last four digits"), max_length=4, blank=True, default="", db_default=""
    )
    phone_sealed = models.BinaryField(_("phone, encrypted"), null=True, blank=True)
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
    source_channel = models.CharField(
        _("source channel"), max_length=30, choices=Channel.choices, blank=True
    )
    lifecycle_stage = models.CharField(
        _("lifecycle stage"),
        max_length=20,
        choices=LifecycleStage.choices,
        default=LifecycleStage.PROSPECT,
        db_default=LifecycleStage.PROSPECT,
    )
    stage_changed_at = models.DateTimeField(_("stage since"), null=True, blank=True)
    member_since = models.DateTimeField(
        _("member since"),
        null=True,
        blank=True,
        help_text=_("When the person joined as a member (bound a phone or registered)."),
    )
    # Order statistics, kept current by the order services (they feed lifecycle and RFM).
    order_count = models.PositiveIntegerField(_("orders"), default=0, db_default=0)
    total_spent = models.DecimalField(
        _("total spent"),
        max_digits=14,
        decimal_places=2,
        default=Decimal("0"),
        db_default=Decimal("0"),
    )
    first_order_at = models.DateTimeField(_("first order"), null=True, blank=True)
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True)
    # Set when the person's data was erased on their request (PIPL): the row stays so
    # orders and points still add up, but nothing on it identifies anyone.
    erased_at = models.DateTimeField(_("personal data erased"), null=True, blank=True)
    # No index on lifecycle_stage (eight values: counting by stage scans anyway), on
    # merged_into (almost always NULL; only the partial member_merged_idx, which a member
    # never merged does not enter) or on the purchase figures: every index is paid for on
    # each imported member, and with none on the figures their updates stay HOT (the
    # table keeps 15 % free per page, see migration 0004).
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_members",
        verbose_name=_("merged into"),
        db_index=False,
    )

    scope: ClassVar[Scope] = Scope(
        store="home_store", region=("home_store__region",), guide="guide"
    )
    objects = ActiveMemberManager()
    all_objects = MemberQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("member")
        verbose_name_plural = _("members")
        base_manager_name = "all_objects"
        indexes = [
            models.Index(fields=["created_at"], name="member_created_idx"),
            # The few members merged into another: identity lookups ask which of the
            # members they found are merged without reading every found member's row.
            models.Index(
                fields=["id"],
                name="member_merged_idx",
                condition=models.Q(merged_into__isnull=False),
            ),
        ]
        permissions = [("view_full_phone", "Can see full phone numbers")]

    def __str__(self) -> str:
        return self.name or self.masked_phone or f"#{self.pk}"

    def set_phone(self, e164: str) -> None:
        """Keep `e164` (normalised) as digest, last four digits and sealed copy; the
        caller saves (update_fields=PHONE_FIELDS)."""
        self.phone_digest, self.phone_last4, self.phone_sealed = phone_columns(e164)

    @property
    def has_phone(self) -> bool:
        return bool(self.phone_digest)

    def phone_digests(self) -> tuple[str, ...]:
        """What rows about this member's phone may hold: its digest under every known
        key, current first, while a key rotation is under way; else the stored digest."""
        if not self.phone_digest:
            return ()
        if not self.phone_sealed or not previous_keys_configured():
            return (self.phone_digest,)
        try:
            phone = open_phone(self.phone_sealed)
        except InvalidTag:
            return (self.phone_digest,)
        return tuple(dict.fromkeys((*phone_digests(phone), self.phone_digest)))

    def reveal_phone(self) -> str:
        """The full number, decrypted. Only for sending a message and for the audited
        unmask (members.services.phones.member_unmask_phone); never shown otherwise."""
        return open_phone(self.phone_sealed) if self.phone_sealed else ""

    @property
    def masked_phone(self) -> str:
        return mask_last4(self.phone_last4)

    @property
    def is_child(self) -> bool:
        """Under 14 today (PIPL: their personal information is sensitive). Without a
        birthday we cannot tell, and do not assume."""
        return self.birthday is not None and age_on(self.birthday, timezone.localdate()) < CHILD_AGE


# What `set_phone` changes, for save(update_fields=…).
PHONE_FIELDS = ["phone_digest", "phone_last4", "phone_sealed"]


def mask_phone(phone: str) -> str:
    """A phone in the one masked form shown everywhere: +8613812341234 → *******1234."""
    return mask_last4(phone[-4:]) if phone else ""


def can_see_full_phone(user: object) -> bool:
    """Whether `user` may ask to see a full number (each time audited); pages show the
    masked number to everyone by default."""
    has_perm = getattr(user, "has_perm", None)
    return bool(has_perm and user.is_active and has_perm("members.view_full_phone"))  # type: ignore[attr-defined]
