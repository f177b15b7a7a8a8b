import json
import urllib.error
import urllib.request
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from campaigns.services.sms_replies import (
    SIGNATURE_HEADER,
    inbound_secret,
    inbound_signature,
    sms_replies_receive,
)
from members.services.errors import MemberError


class Command(BaseCommand):
    help = (
        "Simulate a member texting back to our SMS (e.g. TD or 退订), as the SMS provider "
        "pushes it: a signed push handled here, or POSTed to a running server with --url."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--phone", required=True, help="the number the reply comes from")
        parser.add_argument("--text", required=True, help="what the member texted")
        parser.add_argument(
            "--url",
            default="",
            help="POST to this address, e.g. http://127.0.0.1:8000/hooks/sms/inbound",
        )

    def handle(self, *args: Any, phone: str, text: str, url: str, **options: Any) -> None:
        if not inbound_secret():
            raise CommandError(
                "Pushes cannot be signed: set SMS_INBOUND_SECRET (Aliyun SMS is configured)."
            )
        body = json.dumps(
            [
                {
                    "phone_number": phone,
                    "content": text,
                    "send_time": timezone.localtime().strftime("%Y-%m-%d %H:%M:%S"),
                    "sequence_id": int(timezone.now().timestamp() * 1000),
                }
            ],
            ensure_ascii=False,
        ).encode()
        signature = inbound_signature(body)
        if url:
            request = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    self.stdout.write(response.read().decode())
            except urllib.error.HTTPError as exc:
                raise CommandError(f"HTTP {exc.code}: {exc.read().decode()[:300]}") from None
            except urllib.error.URLError as exc:
                raise CommandError(f"{url} unreachable: {exc.reason}") from None
            return
        try:
            entries = sms_replies_receive(body=body, signature=signature)
        except MemberError as exc:
            raise CommandError(str(exc.message)) from exc
        self.stdout.write(f"withdrawn: {len(entries)}")
