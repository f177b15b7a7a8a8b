"""Behaviour events: batches from the mini-program in, their effects out.

Ingesting is built for throughput: a batch of up to 500 events is checked in plain Python,
its identities are looked up in one query, and its events are written with one
`INSERT … ON CONFLICT (client_event_id) DO NOTHING`, so a replayed event id is ignored
without a lookup. Bad events are rejected one by one with a reason; the rest are kept.

Effects (points by the earn rules, QR-code tags and guide, lifecycle, auto-tags) are
applied after the batch commits, by a Celery task per batch. `events_apply` claims events
by setting `applied_at` in the same transaction as their effects, so an event's effects
happen once, whoever runs it and however often; a beat sweep picks up batches whose task
was lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from members.models import IdentityKind, Member
from members.services.errors import MemberError
from members.services.identity import IdentityKey, identity_key, member_resolve_with_retry
from touchpoints.models import EventClient, EventType, QrCode, Touchpoint

log = logging.getLogger(__name__)

MAX_BATCH = 500
MAX_PROPERTIES_BYTES = 4096
MAX_AGE = timedelta(days=90)
MAX_AHEAD = timedelta(minutes=10)
# Events that earn points through the earn rule of the same name.
EARNING = {
    EventType.SIGN_IN: "sign_in",
    EventType.REGISTER: "register",
    EventType.REVIEW: "review",
    EventType.SHARE: "share",
    EventType.LIKE: "like",
}


@dataclass(frozen=True)
class Rejected:
    index: int
    id: str
    code: str
    message: str


@dataclass
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)


@dataclass
class _Valid:
    index: int
    client_id: str
    type: str
    occurred_at: datetime
    keys: list[IdentityKey]
    touchpoint: str
    qr: str
    properties: dict[str, Any]
    properties_json: str
    member_id: int | None = None
    touchpoint_id: int | None = None


class _Bad(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _identity_keys(raw: Any) -> list[IdentityKey]:
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else None
    if items is None or not 1 <= len(items) <= 5:
        raise _Bad("identity_invalid", _("Give the person's identity: 1–5 {kind, value}."))
    keys = []
    for item in items:
        if not isinstance(item, dict):
            raise _Bad("identity_invalid", _("Each identity is an object {kind, value, app}."))
        try:
            keys.append(
                identity_key(
                    str(item.get("kind", "")), item.get("value"), str(item.get("app") or "")
                )
            )
        except MemberError as exc:
            raise _Bad(exc.code, str(exc.message)) from exc
    return keys


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _check(index: int, raw: Any, *, now: datetime, own_member: int | None) -> _Valid:
    if not isinstance(raw, dict):
        raise _Bad("event_invalid", _("An event is a JSON object."))
    client_id = raw.get("id")
    if not isinstance(client_id, str) or not 1 <= len(client_id.strip()) <= 64:
        raise _Bad("id_invalid", _("Each event needs its own id of 1–64 characters."))
    kind = raw.get("type")
    if kind not in EventType.values:
        raise _Bad("type_unknown", _("Unknown event type “%(type)s”.") % {"type": str(kind)[:30]})
    text = raw.get("time")
    at = parse_datetime(text) if isinstance(text, str) else None
    if at is None or timezone.is_naive(at):
        raise _Bad("time_invalid", _("Give the time as ISO 8601 with a time zone."))
    if at > now + MAX_AHEAD:
        raise _Bad("time_future", _("The event's time is in the future."))
    if at < now - MAX_AGE:
        raise _Bad("time_too_old", _("Events older than 90 days are not taken."))
    properties = raw.get("properties", {})
    if not isinstance(properties, dict):
        raise _Bad("properties_invalid", _("Properties are a JSON object."))
    dumped = json.dumps(properties, ensure_ascii=False)
    # PostgreSQL text and jsonb cannot hold NUL: refuse the event, not the batch.
    if "\\u0000" in dumped or _has_nul([client_id, raw.get("touchpoint"), raw.get("identity")]):
        raise _Bad("nul_character", _("The event contains a NUL character."))
    if len(dumped) > MAX_PROPERTIES_BYTES:
        raise _Bad("properties_too_large", _("Properties are limited to 4 KB."))
    needs_identity = "identity" in raw or own_member is None
    keys = _identity_keys(raw.get("identity")) if needs_identity else []
    touchpoint = raw.get("touchpoint") or ""
    qr = properties.get("qr") or ""
    if not isinstance(touchpoint, str) or not isinstance(qr, str):
        raise _Bad("touchpoint_invalid", _("A touchpoint is named by its code."))
    if kind == EventType.REVIEW:
        rating = properties.get("rating")
        if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
            raise _Bad("rating_invalid", _("A review needs a rating from 1 to 5."))
    return _Valid(
        index, client_id.strip(), kind, at, keys, touchpoint[:40], qr[:32], properties, dumped
    )


def _holders(keys: Iterable[IdentityKey]) -> dict[IdentityKey, int]:
    """Identity → member (merged-away members answer with the member they joined)."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.kind, i.app, i.value, COALESCE(m.merged_into_id, m.id)
            FROM unnest(%s::text[], %s::text[], %s::text[]) AS k(kind, app, value)
            JOIN members_identity i ON i.value = k.value AND i.kind = k.kind AND i.app = k.app
            JOIN members_member m ON m.id = i.member_id
            """,
            [[k.kind for k in wanted], [k.app for k in wanted], [k.value for k in wanted]],
        )
        return {
            IdentityKey(kind=kind, value=value, app=app): member
            for kind, app, value, member in cursor.fetchall()
        }


INSERT_SQL = """
INSERT INTO touchpoints_behaviourevent
    (client_event_id, member_id, type, occurred_at, received_at, touchpoint_id, client_id,
     properties)
SELECT e.id, e.member, e.type, e.at, %s, e.touchpoint, %s, e.properties::jsonb
FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::timestamptz[], %s::bigint[], %s::text[])
    AS e(id, member, type, at, touchpoint, properties)
ON CONFLICT (client_event_id) DO NOTHING
RETURNING id
"""


def events_ingest(
    *,
    events: Any,
    client: EventClient | None = None,
    member_id: int | None = None,
    now: datetime | None = None,
) -> BatchResult:
    """Keep the good events of a batch and say why each bad one was refused.

    `client` posts for anyone (each event names the person's identity); a member posting
    for themselves (`member_id`) may leave the identity out, and an identity that names
    someone else is refused. A batch that is not a list of 1–500 is refused whole."""
    if not isinstance(events, list) or not events:
        raise MemberError("batch_invalid", _('Send {"events": [...]} with 1–500 events.'))
    if len(events) > MAX_BATCH:
        raise MemberError(
            "batch_too_large", _("At most %(n)d events per batch.") % {"n": MAX_BATCH}, 413
        )
    now = now or timezone.now()
    result = BatchResult()
    valid: list[_Valid] = []
    seen: set[str] = set()
    for index, raw in enumerate(events):
        try:
            event = _check(index, raw, now=now, own_member=member_id)
        except _Bad as bad:
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            result.rejected.append(
                Rejected(index, str(raw_id or "")[:64], bad.code, str(bad.message))
            )
            continue
        if event.client_id in seen:
            result.duplicates += 1
            continue
        seen.add(event.client_id)
        valid.append(event)
    if not valid:
        return result
    _resolve_members(valid, result, member_id=member_id)
    _resolve_touchpoints(valid, result)
    valid = [e for e in valid if e.member_id is not None and e.index not in _rejected(result)]
    if not valid:
        return result
    # Each source's ids are its own: stored under the source's prefix, so one client (or
    # member) can never make another's event look like a replay.
    prefix = (
        f"c{client.pk}:"
        if client is not None
        else f"m{member_id}:"
        if member_id is not None
        else ""
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            INSERT_SQL,
            [
                now,
                client.pk if client is not None else None,
                [prefix + e.client_id for e in valid],
                [e.member_id for e in valid],
                [e.type for e in valid],
                [e.occurred_at for e in valid],
                [e.touchpoint_id for e in valid],
                [e.properties_json for e in valid],
            ],
        )
        ids = [row[0] for row in cursor.fetchall()]
        if ids:
            from touchpoints.tasks import apply_event_effects

            transaction.on_commit(lambda: apply_event_effects.delay(ids))
    result.accepted = len(ids)
    result.duplicates += len(valid) - len(ids)
    result.event_ids = ids
    result.rejected.sort(key=lambda r: r.index)
    return result


def _rejected(result: BatchResult) -> set[int]:
    return {r.index for r in result.rejected}


def _resolve_members(valid: list[_Valid], result: BatchResult, *, member_id: int | None) -> None:
    holders = _holders(k for e in valid for k in e.keys)
    for event in valid:
        if not event.keys:
            event.member_id = member_id
            continue
        if member_id is not None:
            # A member posting for themselves may name only identities already theirs:
            # nothing is linked, created or raised for review from a member's own token.
            if all(holders.get(k) == member_id for k in event.keys):
                event.member_id = member_id
            else:
                result.rejected.append(
                    Rejected(
                        event.index,
                        event.client_id,
                        "identity_not_yours",
                        _("A member posts only their own events."),
                    )
                )
            continue
        members = {holders[k] for k in event.keys if k in holders}
        unknown = [k for k in event.keys if k not in holders]
        if len(members) == 1 and not unknown:
            event.member_id = next(iter(members))
        else:
            # Someone new to the pool, or an identity to link, or a conflict: the identity
            # service decides (and raises a merge suggestion on a conflict).
            resolution = member_resolve_with_retry(identities=event.keys, source=_source(event))
            if resolution.member is None:
                result.rejected.append(
                    Rejected(
                        event.index,
                        event.client_id,
                        "identity_conflict",
                        _("The identities name different members; sent for review."),
                    )
                )
                continue
            event.member_id = resolution.member.pk
            for key in event.keys:
                holders[key] = event.member_id


def _source(event: _Valid) -> str:
    kinds = {k.kind for k in event.keys}
    if IdentityKind.WECOM_EXTERNAL in kinds:
        return "wecom"
    if IdentityKind.OPENID in kinds or IdentityKind.UNIONID in kinds:
        return "mini_program"
    return "other"


def _resolve_touchpoints(valid: list[_Valid], result: BatchResult) -> None:
    codes = {e.touchpoint for e in valid if e.touchpoint}
    tokens = {e.qr for e in valid if e.qr}
    by_code = dict(
        Touchpoint.objects.filter(code__in=codes).values_list("code", "pk") if codes else []
    )
    by_token = dict(
        QrCode.objects.filter(token__in=tokens).values_list("token", "touchpoint_id")
        if tokens
        else []
    )
    for event in valid:
        if event.touchpoint:
            event.touchpoint_id = by_code.get(event.touchpoint)
            if event.touchpoint_id is None:
                result.rejected.append(
                    Rejected(
                        event.index,
                        event.client_id,
                        "touchpoint_unknown",
                        _("Unknown touchpoint “%(code)s”.") % {"code": event.touchpoint},
                    )
                )
        elif event.qr:
            event.touchpoint_id = by_token.get(event.qr)
            if event.touchpoint_id is None:
                result.rejected.append(
                    Rejected(
                        event.index,
                        event.client_id,
                        "qr_unknown",
                        _("Unknown channel QR code."),
                    )
                )


# --- effects ------------------------------------------------------------------------------


@dataclass
class Effects:
    events: int = 0
    points: int = 0
    tagged: int = 0
    assigned: int = 0
    tickets: int = 0
    refused: list[str] = field(default_factory=list)


CLAIM_SQL = """
UPDATE touchpoints_behaviourevent SET applied_at = %s
WHERE id = ANY(%s) AND applied_at IS NULL
RETURNING id, member_id, type, occurred_at, touchpoint_id, client_event_id, properties
"""


def events_apply(*, ids: Sequence[int], now: datetime | None = None) -> Effects:
    """Apply the effects of these events, once each. Safe to run twice, or at once from
    two workers: the claim and the effects commit together."""
    from members.services.earning import points_award
    from members.services.points import PointsError

    now = now or timezone.now()
    effects = Effects()
    touched: set[int] = set()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(CLAIM_SQL, [now, list(ids)])
            rows = cursor.fetchall()
        # A member merged away since the event arrived: its effects go to the kept member.
        merged = dict(
            Member.all_objects.filter(
                pk__in={row[1] for row in rows}, merged_into__isnull=False
            ).values_list("pk", "merged_into_id")
        )
        for pk, member_id, kind, at, touchpoint_id, client_id, properties in sorted(rows):
            if isinstance(properties, str):  # Django hands jsonb back as text
                properties = json.loads(properties)
            member_id = merged.get(member_id, member_id)
            effects.events += 1
            touched.add(member_id)
            try:
                with transaction.atomic():
                    if kind in EARNING:
                        award = points_award(
                            member_id=member_id,
                            event=EARNING[kind],
                            reference=_earning_reference(kind, member_id, client_id, now),
                            # Caps count by when the event reached us: a client cannot
                            # backdate events into days it has not used up yet.
                            now=now,
                        )
                        effects.points += award.points
                    if kind == EventType.SCAN and touchpoint_id is not None:
                        from touchpoints.services.qr import qr_scan

                        scan = qr_scan(touchpoint_id=touchpoint_id, member_id=member_id, at=at)
                        effects.tagged += scan.tagged
                        effects.assigned += scan.assigned
                    if kind == EventType.REVIEW:
                        from touchpoints.services.feedback import review_ticket

                        ticket = review_ticket(
                            event_id=pk,
                            member_id=member_id,
                            rating=int(properties.get("rating", 5)),
                            touchpoint_id=touchpoint_id,
                            properties=properties,
                            now=now,
                        )
                        effects.tickets += ticket is not None
            except (MemberError, PointsError) as exc:
                effects.refused.append(f"{pk}:{exc.code}")
            except ObjectDoesNotExist:  # its member or touchpoint is gone: nothing to do
                effects.refused.append(f"{pk}:gone")
        from members.services.lifecycle import lifecycle_refresh_ids

        lifecycle_refresh_ids(ids=sorted(touched), reason="behaviour event", now=now)
    if touched:
        from members.tasks import auto_tag_members

        transaction.on_commit(lambda: auto_tag_members.delay(sorted(touched)))
    return effects


def _earning_reference(kind: str, member_id: int, client_id: str, now: datetime) -> str:
    """Once a day for a sign-in, once ever for registering, once per event otherwise
    (whose daily and monthly caps then bound what a client can earn)."""
    if kind == EventType.SIGN_IN:
        return f"sign_in:{member_id}:{timezone.localdate(now).isoformat()}"
    if kind == EventType.REGISTER:
        return f"register:{member_id}"
    return f"event:{client_id}"


def events_apply_stale(*, older_than: timedelta = timedelta(minutes=2), batch: int = 2000) -> int:
    """Apply events whose task never ran (a lost message, a crashed worker)."""
    from touchpoints.models import BehaviourEvent

    cutoff = timezone.now() - older_than
    applied = 0
    while True:
        ids = list(
            BehaviourEvent.objects.filter(applied_at__isnull=True, received_at__lt=cutoff)
            .order_by("id")
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            return applied
        try:
            applied += events_apply(ids=ids).events
        except Exception:
            # One event whose effects keep failing must not hold back every event
            # behind it: apply one by one, and set aside the ones that fail (logged).
            for event_id in ids:
                try:
                    applied += events_apply(ids=[event_id]).events
                except Exception:
                    log.exception("effects of behaviour event %s failed; set aside", event_id)
                    BehaviourEvent.objects.filter(pk=event_id).update(applied_at=timezone.now())
