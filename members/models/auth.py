"""Mini-program sign-in: member sessions (refresh tokens) and the sandbox WeChat codes."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models.member import Member


class MemberSession(models.Model):
    """A signed-in mini-program session. Only a hash of the refresh token is stored."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="sessions", verbose_name=_("member")
    )
    refresh_token_hash = models.CharField(max_length=64, unique=True)
    app = models.CharField(_("app"), max_length=64)
    created_at = models.DateTimeField(_("signed in at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("member session")
        verbose_name_plural = _("member sessions")

    def __str__(self) -> str:
        return f"session #{self.pk} of member #{self.member_id}"


class SandboxCodeKind(models.TextChoices):
    LOGIN = "login", _("wx.login code")
    PHONE = "phone", _("getPhoneNumber code")


class SandboxWechatCode(models.Model):
    """Codes the sandbox WeChat client accepts, each once, like the real service.

    Created by tests, by the demo data and by `manage.py sandbox_wechat_code` for
    developers trying the mini-program API without WeChat.
    """

    code = models.CharField(_("code"), max_length=128, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=SandboxCodeKind.choices)
    openid = models.CharField(_("openid"), max_length=128, blank=True)
    unionid = models.CharField(_("unionid"), max_length=128, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox WeChat code")
        verbose_name_plural = _("sandbox WeChat codes")

    def __str__(self) -> str:
        return self.code
