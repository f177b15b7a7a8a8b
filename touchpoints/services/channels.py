"""Writes for channels, touchpoints, channel QR codes and event clients (HQ and managers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from members.services.errors import MemberError
from scrm.core.services import audit_record
from scrm.org.models import Staff
from scrm.org.scoping import Role
from touchpoints.models import Channel, EventClient, QrCode, QrCodeGuide, Touchpoint, TouchpointKind


@transaction.atomic
def touchpoint_save(*, form: Any, actor: Any) -> Touchpoint:
    """Save a touchpoint; a QR-code touchpoint gets its QR code (token) on creation."""
    creating = form.instance.pk is None
    touchpoint: Touchpoint = form.save()
    if touchpoint.kind == TouchpointKind.QR_CODE:
        QrCode.objects.get_or_create(touchpoint=touchpoint)
    audit_record(
        actor=actor,
        action="touchpoint.create" if creating else "touchpoint.update",
        target=touchpoint,
        data={"name": touchpoint.name, "code": touchpoint.code, "kind": touchpoint.kind},
    )
    return touchpoint


@transaction.atomic
def channel_save(*, form: Any, actor: Any) -> Channel:
    creating = form.instance.pk is None
    channel: Channel = form.save()
    audit_record(
        actor=actor,
        action="channel.create" if creating else "channel.update",
        target=channel,
        data={"name": channel.name, "kind": channel.kind},
    )
    return channel


@transaction.atomic
def qr_code_save(
    *,
    qr: QrCode,
    form: Any,
    rotation: Sequence[tuple[Staff, int | None]],
    actor: Any,
) -> QrCode:
    """Save a QR code's settings and its rotation (in order). Guides must be active guides
    of the touchpoint's store (any store's for head office's codes), each once."""
    store_id = qr.touchpoint.store_id
    seen: set[int] = set()
    for guide, cap in rotation:
        if guide.role != Role.GUIDE or not guide.is_active:
            raise MemberError(
                "not_a_guide", _("%(name)s is not an active guide.") % {"name": guide}
            )
        if store_id is not None and not guide.stores.filter(pk=store_id).exists():
            raise MemberError(
                "guide_other_store",
                _("%(name)s does not work at %(store)s.")
                % {"name": guide, "store": qr.touchpoint.store},
            )
        if guide.pk in seen:
            raise MemberError(
                "guide_twice", _("%(name)s is in the rotation twice.") % {"name": guide}
            )
        if cap is not None and cap < 1:
            raise MemberError("cap_invalid", _("A daily cap is at least 1."))
        seen.add(guide.pk)
    # Lock the code (a scan moves its rotation under the same lock) and write only what
    # the form holds, never a stale `next_position`.
    QrCode.objects.select_for_update().filter(pk=qr.pk).first()
    qr = form.save(commit=False)
    qr.save(update_fields=[name for name in form.fields if name != "tags"])
    form.save_m2m()
    old = list(QrCodeGuide.objects.filter(qr_code=qr).values_list("guide_id", "daily_cap"))
    QrCodeGuide.objects.filter(qr_code=qr).delete()
    QrCodeGuide.objects.bulk_create(
        QrCodeGuide(qr_code=qr, guide=guide, position=position, daily_cap=cap)
        for position, (guide, cap) in enumerate(rotation)
    )
    new = [(guide.pk, cap) for guide, cap in rotation]
    if new != old:
        QrCode.objects.filter(pk=qr.pk).update(next_position=0)
    audit_record(
        actor=actor,
        action="qr_code.update",
        target=qr,
        data={"rotation": new, "tags": [t.pk for t in qr.tags.all()]},
    )
    return qr


@transaction.atomic
def event_client_create(*, name: str, channel: Channel, actor: Any) -> tuple[EventClient, str]:
    """A new event client and its key, shown once: only its hash is kept."""
    from touchpoints.api.auth import key_hash, new_event_key

    name = (name or "").strip()
    if not name or len(name) > 60:
        raise MemberError("name_invalid", _("A name of 1–60 characters is needed."))
    if EventClient.objects.filter(name=name).exists():
        raise MemberError("name_taken", _("An event client of that name exists."))
    key = new_event_key()
    client = EventClient.objects.create(
        name=name, channel=channel, key_hash=key_hash(key), key_hint=key[-4:]
    )
    audit_record(actor=actor, action="event_client.create", target=client, data={"name": name})
    return client, key


@transaction.atomic
def event_client_switch_off(*, client: EventClient, actor: Any) -> EventClient:
    client.active = False
    client.save(update_fields=["active"])
    audit_record(actor=actor, action="event_client.switch_off", target=client, data={})
    return client
