"""Touchpoints (通触点): the channels a customer meets the brand in, the touchpoints inside
them, channel QR codes (渠道活码) with their guides, and the behaviour events they bring."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import ClassVar

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member, Tag
from scrm.org.models import Store
from scrm.org.scoping import Scope, ScopedQuerySet


class ChannelKind(models.TextChoices):
    OFFICIAL_ACCOUNT = "official_account", _("Official account")
    MINI_PROGRAM = "mini_program", _("Mini-program")
    WECOM = "wecom", _("WeCom")
    STORE = "store", _("Store")
    TMALL = "tmall", _("Tmall")
    JD = "jd", _("JD")
    DOUYIN = "douyin", _("Douyin")
    MEITUAN = "meituan", _("Meituan")
    OFFLINE_EVENT = "offline_event", _("Offline event")
    ADVERTISING = "advertising", _("Advertising")


class Channel(models.Model):
    kind = models.CharField(_("kind"), max_length=20, choices=ChannelKind.choices)
    name = models.CharField(_("name"), max_length=60)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["kind", "name"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return self.name


class TouchpointKind(models.TextChoices):
    QR_CODE = "qr_code", _("Channel QR code")
    POSTER = "poster", _("Poster")
    AD_SLOT = "ad_slot", _("Ad slot")
    STORE_COUNTER = "store_counter", _("Store counter")
    LIVE_ROOM = "live_room", _("Live room")
    PAGE = "page", _("Mini-program page")
    OTHER = "other", _("Other")


class Touchpoint(models.Model):
    """One place inside a channel: a QR code, a poster, an ad slot, a counter, a live room.
    A store's touchpoints belong to that store; head office's have none."""

    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="touchpoints", verbose_name=_("channel")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=TouchpointKind.choices)
    name = models.CharField(_("name"), max_length=80)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="touchpoints",
        verbose_name=_("store"),
    )
    responsible = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("responsible staff"),
        help_text=_("Who hears when this touchpoint raises an alert."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    scope: ClassVar[Scope] = Scope(store="store", region=("store__region",), guide=None)
    objects = ScopedQuerySet["Touchpoint"].as_manager()

    class Meta:
        ordering = ["channel__kind", "name"]
        verbose_name = _("touchpoint")
        verbose_name_plural = _("touchpoints")

    def __str__(self) -> str:
        return self.name


def _token() -> str:
    return secrets.token_urlsafe(12)


class QrCode(models.Model):
    """A channel QR code (渠道活码). Scanning it tags the person, gives them a guide (one
    guide, or the next of a rotation that skips guides at their daily cap, else the
    backup guide), and greets them with the welcome message, while it is valid."""

    touchpoint = models.OneToOneField(
        Touchpoint, on_delete=models.CASCADE, related_name="qr_code", verbose_name=_("touchpoint")
    )
    token = models.CharField(_("token"), max_length=32, unique=True, default=_token)
    tags = models.ManyToManyField(Tag, blank=True, related_name="+", verbose_name=_("auto-tags"))
    backup_guide = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("backup guide"),
        help_text=_("Takes over when every guide of the rotation is at their daily cap."),
    )
    welcome_message = models.TextField(_("welcome message"), max_length=1000, blank=True)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    # Where the rotation stands: the position after the guide who got the last scan.
    next_position = models.PositiveIntegerField(_("next in rotation"), default=0)

    scope: ClassVar[Scope] = Scope(
        store="touchpoint__store", region=("touchpoint__store__region",), guide=None
    )
    objects = ScopedQuerySet["QrCode"].as_manager()

    class Meta:
        verbose_name = _("channel QR code")
        verbose_name_plural = _("channel QR codes")

    def __str__(self) -> str:
        return str(self.touchpoint)

    def is_valid(self, at: datetime | None = None) -> bool:
        at = at or timezone.now()
        if not self.touchpoint.active:
            return False
        if self.valid_from is not None and at < self.valid_from:
            return False
        return self.valid_until is None or at <= self.valid_until


class QrCodeGuide(models.Model):
    """One guide of a QR code's rotation (a single guide is a rotation of one)."""

    qr_code = models.ForeignKey(
        QrCode, on_delete=models.CASCADE, related_name="rotation", verbose_name=_("QR code")
    )
    guide = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("guide"),
    )
    position = models.PositiveIntegerField(_("position"))
    daily_cap = models.PositiveIntegerField(
        _("daily cap"), null=True, blank=True, help_text=_("Empty: no cap.")
    )

    class Meta:
        ordering = ["qr_code", "position"]
        verbose_name = _("rotation guide")
        verbose_name_plural = _("rotation guides")
        constraints = [
            models.UniqueConstraint(fields=["qr_code", "guide"], name="qr_guide_once"),
            models.UniqueConstraint(fields=["qr_code", "position"], name="qr_position_once"),
        ]

    def __str__(self) -> str:
        return f"{self.position}: {self.guide}"


class QrGuideDay(models.Model):
    """How many customers a QR code gave a guide on one day: what the daily cap counts."""

    qr_code = models.ForeignKey(QrCode, on_delete=models.CASCADE, related_name="+")
    guide = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["qr_code", "guide", "day"], name="qr_guide_day_once")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.guide_id}: {self.count}"


class EventClient(models.Model):
    """A system allowed to post behaviour events in batches (the mini-program's backend, a
    tracking relay). Its key is shown once at creation; only a hash is kept."""

    name = models.CharField(_("name"), max_length=60, unique=True)
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="+", verbose_name=_("channel")
    )
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True)
    key_hint = models.CharField(_("key ends with"), max_length=8)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("event client")
        verbose_name_plural = _("event clients")

    def __str__(self) -> str:
        return self.name


class EventType(models.TextChoices):
    FOLLOW = "follow", _("Follow")
    UNFOLLOW = "unfollow", _("Unfollow")
    SCAN = "scan", _("Scan")
    REGISTER = "register", _("Register")
    BROWSE_PRODUCT = "browse_product", _("Browse a product")
    ADD_TO_CART = "add_to_cart", _("Add to cart")
    ORDER_PAID = "order_paid", _("Order paid")
    SHARE = "share", _("Share")
    LIKE = "like", _("Like")
    COMMENT = "comment", _("Comment")
    REVIEW = "review", _("Review")
    SIGN_IN = "sign_in", _("Sign-in")


class BehaviourEvent(models.Model):
    """One thing a person did, as a client reported it. `client_event_id` is the client's
    own id: a replay of it is ignored. Effects (points, tags, stage, guide) are applied
    once, after the batch commits; `applied_at` records that."""

    id = models.BigAutoField(primary_key=True)
    # The source's own id under its prefix ("c<client>:" or "m<member>:"): a replay from
    # the same source is ignored, and sources cannot collide.
    client_event_id = models.CharField(_("client event id"), max_length=80, unique=True)
    # No foreign-key constraints on the hot insert path: events are written in batches of
    # hundreds and each check is a lookup at commit. Members are never deleted (erasure
    # anonymises them) and touchpoints are protected by the app.
    member = models.ForeignKey(
        Member,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="events",
        verbose_name=_("member"),
        db_index=False,
    )
    type = models.CharField(_("type"), max_length=20, choices=EventType.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    touchpoint = models.ForeignKey(
        Touchpoint,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("touchpoint"),
        db_index=False,
    )
    client = models.ForeignKey(
        EventClient,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("client"),
        db_index=False,
    )
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    applied_at = models.DateTimeField(_("effects applied"), null=True, blank=True)

    scope: ClassVar[Scope] = Scope(
        store="member__home_store", region=("member__home_store__region",), guide="member__guide"
    )
    objects = ScopedQuerySet["BehaviourEvent"].as_manager()

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        verbose_name = _("behaviour event")
        verbose_name_plural = _("behaviour events")
        indexes = [
            models.Index(fields=["member", "occurred_at"], name="event_member_idx"),
            models.Index(fields=["touchpoint", "occurred_at"], name="event_touchpoint_idx"),
            models.Index(
                fields=["id"], condition=Q(applied_at__isnull=True), name="event_unapplied_idx"
            ),
            # Events arrive roughly in time order: a BRIN index serves the day ranges the
            # health figures read, for almost no cost on the insert path.
            BrinIndex(fields=["occurred_at"], name="event_occurred_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} {self.occurred_at:%Y-%m-%d %H:%M}"
