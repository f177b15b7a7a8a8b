import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from members.models import SandboxCodeKind, SandboxWechatCode
from members.phones import InvalidPhone, normalize_phone


class Command(BaseCommand):
    help = (
        "Issue a one-time code the sandbox WeChat client accepts, to try the mini-program "
        "API without WeChat: a wx.login code (--openid, optional --unionid) or a "
        "getPhoneNumber code (--phone)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--openid", help="openid the login code stands for")
        parser.add_argument("--unionid", default="", help="unionid (optional)")
        parser.add_argument("--phone", help="phone the getPhoneNumber code stands for")

    def handle(
        self, *args: Any, openid: str | None, unionid: str, phone: str | None, **options: Any
    ) -> None:
        if bool(openid) == bool(phone):
            raise CommandError("Give either --openid (a login code) or --phone (a phone code).")
        code = f"sandbox-{secrets.token_urlsafe(12)}"
        if phone:
            try:
                normalize_phone(phone)
            except InvalidPhone as exc:
                raise CommandError(exc.messages[0]) from exc
            SandboxWechatCode.objects.create(code=code, kind=SandboxCodeKind.PHONE, phone=phone)
        else:
            SandboxWechatCode.objects.create(
                code=code, kind=SandboxCodeKind.LOGIN, openid=str(openid), unionid=unionid
            )
        self.stdout.write(code)
