"""Loyalty: tiers, the two points accounts, their lots and the append-only ledger.

Points are money-like. Every change is a ledger entry, unique per (source, external id)
so a replayed event applies once; points arrive in lots with an expiry date and are
spent oldest-expiring first. Three figures always agree, and the database checks the
first two: an account's balance never goes below zero, it equals the sum of its ledger
entries, and it equals the points still left in its lots.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from members.models.member import Member
from scrm.org.scoping import Scope, ScopedQuerySet

MEMBER_SCOPE = Scope(
    store="member__home_store", region=("member__home_store__region",), guide="member__guide"
)


class PointsKind(models.TextChoices):
    ACTIVITY = "activity", _("Activity points")  # 活跃积分: engagement, spent in the mall
    GROWTH = "growth", _("Growth value")  # 成长值: from purchases, drives tiers


class PointsAccount(models.Model):
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="points_accounts", verbose_name=_("member")
    )
    kind = models.CharField(_("account"), max_length=10, choices=PointsKind.choices)
    balance = models.BigIntegerField(_("balance"), default=0, db_default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    scope: ClassVar[Scope] = MEMBER_SCOPE
    objects = ScopedQuerySet["PointsAccount"].as_manager()

    class Meta:
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        constraints = [
            models.UniqueConstraint(fields=["member", "kind"], name="points_account_unique"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="points_balance_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.get_kind_display()} {self.balance}"


class EntryKind(models.TextChoices):
    EARN = "earn", _("Earned")
    REDEEM = "redeem", _("Redeemed")
    EXPIRE = "expire", _("Expired")
    ADJUST = "adjust", _("Adjusted")
    REVERSE = "reverse", _("Reversed")


class LedgerEntry(models.Model):
    """One change to one account. Rows are never updated or deleted (a database trigger
    refuses it); a correction is a new entry."""

    account = models.ForeignKey(
        PointsAccount, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    kind = models.CharField(_("kind"), max_length=10, choices=EntryKind.choices)
    amount = models.BigIntegerField(_("points"), help_text=_("Positive adds, negative takes."))
    balance_after = models.BigIntegerField(_("balance after"))
    source = models.CharField(_("source"), max_length=40)
    external_id = models.CharField(_("reference"), max_length=120)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        verbose_name=_("reverses"),
        db_index=False,
    )
    created_at = models.DateTimeField(_("at"))

    scope: ClassVar[Scope] = Scope(
        store="account__member__home_store",
        region=("account__member__home_store__region",),
        guide="account__member__guide",
    )
    objects = ScopedQuerySet["LedgerEntry"].as_manager()

    class Meta:
        verbose_name = _("points ledger entry")
        verbose_name_plural = _("points ledger")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="ledger_idempotency"),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="ledger_balance_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["account", "created_at"], name="ledger_account_time_idx"),
            models.Index(
                fields=["reverses"], name="ledger_reverses_idx", condition=Q(reverses__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount:+d}"


class PointsLot(models.Model):
    """Points that arrived together and expire together."""

    account = models.ForeignKey(
        PointsAccount, on_delete=models.PROTECT, related_name="lots", db_index=False
    )
    entry = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, related_name="lot", verbose_name=_("entry")
    )
    amount = models.BigIntegerField(_("points"))
    remaining = models.BigIntegerField(_("left"))
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)

    class Meta:
        verbose_name = _("points lot")
        verbose_name_plural = _("points lots")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0)
                & Q(remaining__gte=0)
                & Q(remaining__lte=models.F("amount")),
                name="lot_remaining_within_amount",
            ),
        ]
        indexes = [
            # Spending order within an account: oldest-expiring first, never-expiring last.
            models.Index(
                fields=["account", "expires_at", "id"],
                name="lot_spend_order_idx",
                condition=Q(remaining__gt=0),
            ),
            models.Index(
                fields=["expires_at"], name="lot_expiry_idx", condition=Q(remaining__gt=0)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.remaining}/{self.amount}"


class LotSpend(models.Model):
    """Which lots an entry took points from (or gave back to): lets a cancelled
    redemption return points to the lots they came from."""

    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="spends")
    lot = models.ForeignKey(PointsLot, on_delete=models.PROTECT, related_name="spends")
    amount = models.BigIntegerField(_("points"), help_text=_("Negative takes from the lot."))

    class Meta:
        verbose_name = _("lot movement")
        verbose_name_plural = _("lot movements")

    def __str__(self) -> str:
        return f"{self.amount:+d}"


class EarnEvent(models.TextChoices):
    REGISTER = "register", _("Registration")
    SIGN_IN = "sign_in", _("Daily sign-in")
    REVIEW = "review", _("Review")
    SHARE = "share", _("Share")
    LIKE = "like", _("Like")
    PURCHASE = "purchase", _("Purchase (per yuan paid)")


class EarnRule(models.Model):
    """How many points one event earns, and how many such points a member may earn a day
    and a month. Purchases earn growth value per yuan; engagement earns activity points."""

    event = models.CharField(_("event"), max_length=20, choices=EarnEvent.choices, unique=True)
    account = models.CharField(_("account"), max_length=10, choices=PointsKind.choices)
    points = models.PositiveIntegerField(_("points per event"), default=0)
    points_per_yuan = models.DecimalField(
        _("points per yuan"), max_digits=6, decimal_places=2, default=0
    )
    daily_cap = models.PositiveIntegerField(
        _("daily cap"), null=True, blank=True, help_text=_("Most points a member earns a day.")
    )
    monthly_cap = models.PositiveIntegerField(_("monthly cap"), null=True, blank=True)
    valid_days = models.PositiveIntegerField(
        _("points valid for (days)"),
        null=True,
        blank=True,
        help_text=_("Empty: the points never expire."),
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["event"]
        verbose_name = _("earn rule")
        verbose_name_plural = _("earn rules")

    def __str__(self) -> str:
        return self.get_event_display()


class BonusPeriod(models.Model):
    """A time-boxed multiplier (double-points days) for some or all events."""

    name = models.CharField(_("name"), max_length=60)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    multiplier = models.DecimalField(_("multiplier"), max_digits=4, decimal_places=2)
    events = models.JSONField(
        _("events"), default=list, blank=True, help_text=_("Empty: every event.")
    )

    class Meta:
        ordering = ["-starts_at"]
        verbose_name = _("bonus period")
        verbose_name_plural = _("bonus periods")
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="bonus_period_ends_after_start"
            ),
            models.CheckConstraint(condition=Q(multiplier__gt=0), name="bonus_multiplier_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ×{self.multiplier}"


class IdempotentRequest(models.Model):
    """A POST that moves points or stock, remembered by its Idempotency-Key: a replay gets
    the first answer, the same key with another body is refused."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(_("key"), max_length=100)
    endpoint = models.CharField(_("endpoint"), max_length=100)
    body_hash = models.CharField(_("body hash"), max_length=64)
    finished = models.BooleanField(_("finished"), default=False)
    status_code = models.PositiveSmallIntegerField(_("status"), null=True, blank=True)
    response = models.JSONField(_("response"), null=True, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("idempotent request")
        verbose_name_plural = _("idempotent requests")
        constraints = [
            models.UniqueConstraint(fields=["member", "key"], name="idempotent_request_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key}"


class Tier(models.Model):
    """A member level (普卡, 银卡, 金卡, 钻石卡). Higher rank is better. A member enters a tier
    when their growth value over the last `window_days` reaches `threshold`, holds it for
    `valid_days`, keeps it by earning `retain_threshold` within that time (保级), and
    otherwise drops one level after `grace_days`."""

    name = models.CharField(_("name"), max_length=30, unique=True)
    rank = models.PositiveSmallIntegerField(_("rank"), unique=True)
    threshold = models.PositiveIntegerField(_("growth value to enter"))
    window_days = models.PositiveIntegerField(_("counted over (days)"), default=365)
    valid_days = models.PositiveIntegerField(_("valid for (days)"), default=365)
    retain_threshold = models.PositiveIntegerField(_("growth value to keep it"), default=0)
    grace_days = models.PositiveIntegerField(_("grace period (days)"), default=30)
    points_multiplier = models.DecimalField(
        _("activity points multiplier"), max_digits=4, decimal_places=2, default=1
    )
    discount_rate = models.DecimalField(
        _("discount rate"),
        max_digits=4,
        decimal_places=2,
        default=1,
        help_text=_("0.95 means a 5 percent discount."),
    )
    free_delivery = models.BooleanField(_("free delivery"), default=False)
    birthday_coupon = models.ForeignKey(
        "CouponTemplate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("birthday gift"),
        help_text=_("Issued automatically on the member's birthday."),
    )
    priority_service = models.BooleanField(_("priority service"), default=False)

    class Meta:
        ordering = ["rank"]
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        constraints = [
            models.CheckConstraint(
                condition=Q(points_multiplier__gt=0), name="tier_multiplier_positive"
            ),
            models.CheckConstraint(
                condition=Q(discount_rate__gt=0) & Q(discount_rate__lte=1),
                name="tier_discount_within_one",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class MemberTier(models.Model):
    """A member's earned tier and, separately, a tier HQ set by hand until a date."""

    member = models.OneToOneField(
        Member, on_delete=models.CASCADE, related_name="tier_state", verbose_name=_("member")
    )
    tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    achieved_at = models.DateTimeField(_("since"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    grace_until = models.DateTimeField(_("grace until"), null=True, blank=True)
    manual_tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    manual_until = models.DateTimeField(_("set by hand until"), null=True, blank=True)
    manual_reason = models.CharField(_("reason"), max_length=200, blank=True)

    scope: ClassVar[Scope] = MEMBER_SCOPE
    objects = ScopedQuerySet["MemberTier"].as_manager()

    class Meta:
        verbose_name = _("member tier")
        verbose_name_plural = _("member tiers")
        constraints = [
            models.CheckConstraint(
                condition=Q(manual_tier__isnull=True) | Q(manual_until__isnull=False),
                name="manual_tier_has_end_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.tier_id}"


class TierChangeKind(models.TextChoices):
    UPGRADE = "upgrade", _("Upgraded")
    RETAIN = "retain", _("Kept (retention met)")
    GRACE = "grace", _("Grace period started")
    DOWNGRADE = "downgrade", _("Downgraded")
    MANUAL_SET = "manual_set", _("Set by hand")
    MANUAL_END = "manual_end", _("Hand-set tier ended")


class TierChange(models.Model):
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="tier_changes", verbose_name=_("member")
    )
    kind = models.CharField(_("change"), max_length=12, choices=TierChangeKind.choices)
    from_tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    growth = models.BigIntegerField(_("growth value counted"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(_("at"))

    scope: ClassVar[Scope] = MEMBER_SCOPE
    objects = ScopedQuerySet["TierChange"].as_manager()

    class Meta:
        ordering = ["-changed_at", "-id"]
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        indexes = [models.Index(fields=["member", "changed_at"], name="tierchange_member_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.from_tier_id}→{self.to_tier_id}"


class CouponKind(models.TextChoices):
    AMOUNT_OFF = "amount_off", _("Amount off")
    PERCENT_OFF = "percent_off", _("Percent off")
    GIFT = "gift", _("Gift")
    FREE_DELIVERY = "free_delivery", _("Free delivery")


class CouponTemplate(models.Model):
    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("kind"), max_length=15, choices=CouponKind.choices)
    amount_off = models.DecimalField(
        _("amount off (yuan)"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    percent_off = models.PositiveSmallIntegerField(_("percent off"), null=True, blank=True)
    gift = models.CharField(_("gift"), max_length=100, blank=True)
    min_spend = models.DecimalField(_("minimum spend"), max_digits=10, decimal_places=2, default=0)
    valid_days = models.PositiveIntegerField(_("valid for (days after issue)"), default=30)
    per_member_limit = models.PositiveIntegerField(
        _("per member"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    total_limit = models.PositiveIntegerField(
        _("total issued"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    issued_count = models.PositiveIntegerField(_("issued"), default=0)
    stores = models.ManyToManyField(
        "org.Store",
        blank=True,
        related_name="+",
        verbose_name=_("stores"),
        help_text=_("Empty: every store."),
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        constraints = [
            models.CheckConstraint(
                condition=Q(total_limit__isnull=True)
                | Q(issued_count__lte=models.F("total_limit")),
                name="coupon_template_within_total_limit",
            ),
            models.CheckConstraint(
                condition=~Q(kind="amount_off") | Q(amount_off__gt=0),
                name="coupon_amount_off_positive",
            ),
            models.CheckConstraint(
                condition=~Q(kind="percent_off") | Q(percent_off__gt=0, percent_off__lt=100),
                name="coupon_percent_off_within_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CouponStatus(models.TextChoices):
    ISSUED = "issued", _("Issued")
    USED = "used", _("Used")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")


class Coupon(models.Model):
    template = models.ForeignKey(
        CouponTemplate, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("coupon")
    )
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("member")
    )
    code = models.CharField(_("code"), max_length=24, unique=True)
    status = models.CharField(
        _("status"), max_length=10, choices=CouponStatus.choices, default=CouponStatus.ISSUED
    )
    source = models.CharField(_("source"), max_length=40)
    source_ref = models.CharField(_("reference"), max_length=120)
    issued_at = models.DateTimeField(_("issued"))
    valid_until = models.DateTimeField(_("valid until"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)

    scope: ClassVar[Scope] = MEMBER_SCOPE
    objects = ScopedQuerySet["Coupon"].as_manager()

    class Meta:
        ordering = ["-issued_at", "-id"]
        verbose_name = _("issued coupon")
        verbose_name_plural = _("issued coupons")
        constraints = [
            models.UniqueConstraint(fields=["source", "source_ref"], name="coupon_issue_once"),
        ]
        indexes = [
            models.Index(fields=["member", "status"], name="coupon_member_status_idx"),
            models.Index(
                fields=["valid_until"], name="coupon_expiry_idx", condition=Q(status="issued")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} {self.code}"


class CouponLog(models.Model):
    """What happened to each coupon and who did it (the issuance log)."""

    coupon = models.ForeignKey(Coupon, on_delete=models.CASCADE, related_name="log")
    action = models.CharField(_("action"), max_length=10, choices=CouponStatus.choices)
    note = models.CharField(_("note"), max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(_("at"))

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("coupon log entry")
        verbose_name_plural = _("coupon log")

    def __str__(self) -> str:
        return f"{self.coupon_id} {self.action}"


class RewardKind(models.TextChoices):
    COUPON = "coupon", _("Coupon")
    GIFT = "gift", _("Gift")


class Reward(models.Model):
    """An item of the points mall (积分商城)."""

    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("kind"), max_length=10, choices=RewardKind.choices)
    coupon_template = models.ForeignKey(
        CouponTemplate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("coupon"),
    )
    gift = models.CharField(_("gift"), max_length=100, blank=True)
    points_price = models.PositiveIntegerField(_("points"))
    stock = models.IntegerField(_("stock"))
    per_member_limit = models.PositiveIntegerField(_("per member"), null=True, blank=True)
    min_tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("lowest tier"),
    )
    available_from = models.DateTimeField(_("available from"), null=True, blank=True)
    available_until = models.DateTimeField(_("available until"), null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["points_price", "id"]
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        constraints = [
            models.CheckConstraint(condition=Q(stock__gte=0), name="reward_stock_not_negative"),
            models.CheckConstraint(condition=Q(points_price__gt=0), name="reward_price_positive"),
            models.CheckConstraint(
                condition=~Q(kind="coupon") | Q(coupon_template__isnull=False),
                name="coupon_reward_has_template",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RedemptionStatus(models.TextChoices):
    DONE = "done", _("Redeemed")
    CANCELLED = "cancelled", _("Cancelled")


class Redemption(models.Model):
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("member")
    )
    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("reward")
    )
    points = models.PositiveIntegerField(_("points"))
    status = models.CharField(
        _("status"), max_length=10, choices=RedemptionStatus.choices, default=RedemptionStatus.DONE
    )
    coupon = models.OneToOneField(
        Coupon, on_delete=models.PROTECT, null=True, blank=True, related_name="redemption"
    )
    points_entry = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, related_name="redemption", verbose_name=_("entry")
    )
    created_at = models.DateTimeField(_("at"))
    cancelled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)

    scope: ClassVar[Scope] = MEMBER_SCOPE
    objects = ScopedQuerySet["Redemption"].as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        indexes = [models.Index(fields=["member", "reward"], name="redemption_member_reward_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.reward}"


class SweepPosition(models.Model):
    """How far a periodic sweep over a growing table has got (e.g. growth for orders)."""

    name = models.CharField(max_length=40, unique=True)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("sweep position")
        verbose_name_plural = _("sweep positions")

    def __str__(self) -> str:
        return f"{self.name}: {self.last_id}"
