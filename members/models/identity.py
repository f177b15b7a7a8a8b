from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models.member import Member
from scrm.core.pii import mask_last4
from scrm.org.scoping import Scope, ScopedQuerySet


class IdentityKind(models.TextChoices):
    PHONE = "phone", _("Phone")
    UNIONID = "unionid", _("WeChat unionid")
    OPENID = "openid", _("WeChat openid")
    WECOM_EXTERNAL = "wecom_external", _("WeCom external contact")
    TMALL = "tmall", _("Tmall buyer id")
    JD = "jd", _("JD buyer id")
    MEITUAN = "meituan", _("Meituan buyer id")
    DOUYIN = "douyin", _("Douyin buyer id")
    POS_CARD = "pos_card", _("POS card number")


# Identities that name exactly one person: when they disagree, a person decides.
STRONG_KINDS = frozenset({IdentityKind.UNIONID, IdentityKind.PHONE})
# Kinds whose values are only unique within one app (an openid per mini-program / account).
PER_APP_KINDS = frozenset({IdentityKind.OPENID})


class Identity(models.Model):
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="identities", verbose_name=_("member")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=IdentityKind.choices)
    app = models.CharField(
        _("app"),
        max_length=64,
        blank=True,
        help_text=_("For openids: the mini-program or official account they belong to."),
    )
    # For phones: the keyed digest (scrm.core.pii.phone_digest), never the number.
    value = models.CharField(_("value"), max_length=128)
    hint = models.CharField(
        _("hint"),
        max_length=4,
        blank=True,
        default="",
        db_default="",
        help_text=_("For phones: the last four digits, shown masked."),
    )
    source = models.CharField(_("source"), max_length=30, blank=True)
    created_at = models.DateTimeField(_("linked at"), auto_now_add=True)

    scope: ClassVar[Scope] = Scope(
        store="member__home_store", region=("member__home_store__region",), guide="member__guide"
    )
    objects = ScopedQuerySet["Identity"].as_manager()

    class Meta:
        ordering = ["kind", "app", "value"]
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        # Value first: the one index answers both "who holds this phone/openid" (all three
        # columns) and a search by value alone, so imports maintain one index fewer.
        constraints = [
            models.UniqueConstraint(fields=["value", "kind", "app"], name="identity_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.display_value}"

    @property
    def display_value(self) -> str:
        return mask_last4(self.hint) if self.kind == IdentityKind.PHONE else self.value
