"""Tracked links and opens (issue 10).

A message whose material carries a link carries, instead, a link of its own delivery:
`/l/<token>`, the token a short signed form of the delivery id (django.core.signing with a
salt of its own, the signature cut to 16 characters — 96 bits — to keep the address
short). Following it records the delivery's first click (and first open, if none yet),
once whatever the number of clicks, and leads on to the material's stored link — never
anywhere else. Reading the message in the in-app inbox records its first open."""

from __future__ import annotations

import re
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Delivery, DeliveryStatus, InboxMessage
from members.services.errors import MemberError

SALT = "campaigns.tracked-link"
SIGNATURE_LENGTH = 16
# An inbox message's key is its delivery's (`campaigns.services.sending.delivery_key`).
INBOX_KEY = re.compile(r"^b(\d+):m(\d+)$")


class _LinkSigner(signing.Signer):
    """A Signer whose signature is cut short: a link in an SMS should stay short, and 96
    bits of HMAC are plenty against guessing."""

    def signature(self, value: str | bytes, key: str | bytes | None = None) -> str:
        return super().signature(value, key)[:SIGNATURE_LENGTH]


def _signer() -> _LinkSigner:
    return _LinkSigner(salt=SALT, sep=".")


def link_token(delivery_id: int) -> str:
    """The URL-safe signed token of a delivery, such as `G7.x3Fq…` (about 20 characters)."""
    return _signer().sign(signing.b62_encode(delivery_id))


def link_delivery_id(token: str) -> int | None:
    """The delivery id a token stands for, or None for a bad, forged or tampered one."""
    try:
        value = _signer().unsign(token)
        delivery_id = signing.b62_decode(value)
    except (signing.BadSignature, ValueError):
        return None
    return delivery_id if delivery_id > 0 else None


def tracked_url(delivery_id: int) -> str:
    """The absolute tracked link of a delivery (SCRM_PUBLIC_URL + /l/<token>)."""
    path = reverse("tracked-link", args=[link_token(delivery_id)])
    return f"{settings.SCRM_PUBLIC_URL.rstrip('/')}{path}"


def _not_found() -> MemberError:
    return MemberError("link_not_found", _("This link is not valid."), status=404)


def link_follow(*, token: str, now: datetime | None = None) -> str:
    """Record a click of the delivery's tracked link and return where it leads: the
    material's stored link. The first click sets clicked_at (and opened_at, unless the
    message was opened before) in one conditional UPDATE, so repeated or concurrent
    clicks record once. A bad token, an unknown delivery, a control-group one (it was
    never sent) or a material without a link: refused (404), nothing written."""
    delivery_id = link_delivery_id(token)
    if delivery_id is None:
        raise _not_found()
    row = (
        Delivery.objects.filter(pk=delivery_id)
        .exclude(status=DeliveryStatus.HELD_OUT)
        .values_list("broadcast__material__link_url", flat=True)
        .first()
    )
    if not row:  # no such delivery, or nothing to lead to
        raise _not_found()
    now = now or timezone.now()
    Delivery.objects.filter(pk=delivery_id, clicked_at__isnull=True).update(
        clicked_at=now, opened_at=Coalesce("opened_at", Value(now))
    )
    return str(row)


@transaction.atomic
def inbox_read(*, message: InboxMessage, now: datetime | None = None) -> bool:
    """The member read an in-app message: its first read time, and the first open of the
    delivery behind it (found by the message's key, which is the delivery's). Reading
    again changes nothing. Returns whether this was the first read."""
    now = now or timezone.now()
    first = bool(
        InboxMessage.objects.filter(pk=message.pk, read_at__isnull=True).update(read_at=now)
    )
    match = INBOX_KEY.match(message.key)
    if match is not None:
        broadcast_id, member_id = (int(group) for group in match.groups())
        Delivery.objects.filter(
            broadcast_id=broadcast_id,
            member_id=member_id,
            status=DeliveryStatus.SENT,
            opened_at__isnull=True,
        ).update(opened_at=now)
    return first
