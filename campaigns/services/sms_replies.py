"""Replies to our SMS (上行短信): a member texting TD, 退订 … back withdraws marketing by SMS.

The SMS provider pushes the replies it received to `POST /hooks/sms/inbound` as Aliyun's
SmsUp messages do: a JSON array of `{"phone_number", "content", "send_time",
"sequence_id", …}`. The push is signed: the header `X-Sms-Signature` carries the hex
HMAC-SHA256 of the raw body under `SMS_INBOUND_SECRET`, so nobody else can opt a member
out. Without that setting, while SMS go through the sandbox, a secret derived from
SECRET_KEY signs the sandbox's simulated replies (`manage.py sandbox_sms_reply`); with
the real provider configured and no secret, every push is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from campaigns.models import ConsentChannel, ConsentEntry, ConsentPurpose, ConsentSource
from campaigns.selectors.consent import latest_consents
from campaigns.services.consent import consent_record
from members.models.member import mask_phone
from members.services.errors import MemberError
from members.services.phones import members_holding_phone

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Sms-Signature"
# A provider pushes replies in batches; Aliyun's are far smaller.
MAX_REPLIES_PER_PUSH = 500
MAX_BODY_BYTES = 256 * 1024
# What a member texts back to stop marketing SMS, after normalising (full-width to
# half-width, spaces and punctuation dropped, upper case). R: the "拒收请回复R" that
# approved Aliyun templates end with.
STOP_KEYWORDS = frozenset({"TD", "T", "N", "R", "退订", "取消", "拒收"})


def reply_is_stop(text: str) -> bool:
    """Whether a reply asks to stop: `ｔｄ`, ` T D `, `退订。` do; `TD please` does not."""
    folded = unicodedata.normalize("NFKC", text)
    kept = "".join(
        ch for ch in folded if not ch.isspace() and not unicodedata.category(ch).startswith("P")
    )
    return kept.upper() in STOP_KEYWORDS


# --- the push's signature ---------------------------------------------------------------


def inbound_secret() -> bytes:
    """The shared secret pushes are signed with; empty when none may be accepted."""
    configured = str(getattr(settings, "SMS_INBOUND_SECRET", "") or "")
    if configured:
        return configured.encode()
    from campaigns.sms import sms_gateway

    if sms_gateway() is not None:
        return b""  # a real provider, and no secret agreed with it: accept nothing
    return hmac.new(settings.SECRET_KEY.encode(), b"sms-inbound-sandbox", hashlib.sha256).digest()


def inbound_signature(body: bytes, secret: bytes | None = None) -> str:
    key = inbound_secret() if secret is None else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def inbound_signature_valid(body: bytes, signature: str) -> bool:
    secret = inbound_secret()
    if not secret or not signature:
        return False
    return hmac.compare_digest(inbound_signature(body, secret), signature.strip().lower())


# --- the replies ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    phone: str
    text: str


def replies_parse(body: bytes) -> list[Reply]:
    """The replies of a push, or MemberError (400) naming what is wrong with it."""
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MemberError("body_not_json", _("The body is not JSON.")) from None
    if not isinstance(data, list):
        raise MemberError("body_not_list", _("The body must be a JSON array of replies."))
    if len(data) > MAX_REPLIES_PER_PUSH:
        raise MemberError(
            "too_many_replies",
            _("At most %(max)s replies per push.") % {"max": MAX_REPLIES_PER_PUSH},
        )
    replies: list[Reply] = []
    for index, item in enumerate(data):
        phone = item.get("phone_number") if isinstance(item, dict) else None
        text = item.get("content") if isinstance(item, dict) else None
        if not isinstance(phone, str | int) or not isinstance(text, str):
            raise MemberError(
                "reply_invalid",
                _("Reply %(index)s needs a phone_number and a content text.") % {"index": index},
            )
        replies.append(Reply(phone=str(phone), text=text))
    return replies


def sms_reply_receive(*, phone: str, text: str, now: datetime | None = None) -> list[ConsentEntry]:
    """Withdraw marketing by SMS for every member holding `phone` when `text` asks to
    stop; other texts are ignored. A member already withdrawn gets no second entry (the
    provider repeats a push it thinks was lost). An unknown number changes nothing and is
    logged, masked."""
    if not reply_is_stop(text):
        return []
    members = members_holding_phone(phone)
    if not members:
        logger.info("SMS stop reply from an unknown number %s", mask_phone(phone.strip()))
        return []
    entries: list[ConsentEntry] = []
    for member in members:
        latest = latest_consents(member=member).get(ConsentPurpose.MARKETING_SMS)
        if latest is not None and latest.granted is False:
            continue
        entries.append(
            consent_record(
                member=member,
                purpose=ConsentPurpose.MARKETING_SMS,
                granted=False,
                source=ConsentSource.SMS_REPLY,
                channel=ConsentChannel.SMS,
                now=now,
            )
        )
    return entries


@transaction.atomic
def sms_replies_receive(*, body: bytes, signature: str) -> list[ConsentEntry]:
    """A provider's push: checked (403 when the signature is missing or wrong, 400 when the
    body is not a list of replies — nothing written either way), then each reply."""
    if not inbound_signature_valid(body, signature):
        raise MemberError("signature_invalid", _("The signature is missing or wrong."), status=403)
    entries: list[ConsentEntry] = []
    for reply in replies_parse(body):
        entries += sms_reply_receive(phone=reply.phone, text=reply.text)
    return entries
