"""Sending a planned broadcast exactly once per member, whatever crashes.

- `broadcast_dispatch` hands out the planned deliveries in id ranges of about a thousand,
  one Celery task each (a million recipients is a thousand broker messages).
- `send_chunk` takes up to 200 planned rows of its range at a time with
  `FOR UPDATE SKIP LOCKED` (two tasks on the same range never take the same row), asks a
  non-idempotent gateway which of their keys already went out (a worker killed after
  sending and before committing leaves exactly that), checks opt-outs and caps again,
  sends the rest in one gateway call (after waiting for its slot in the gateway's rate
  limit, `GatewayThrottle`, shared by all workers), and writes every row's outcome in
  one statement before committing. A transient failure leaves the row planned for a
  later try, with backoff (5 s, doubling, at most 5 min).
- The task that writes a broadcast's last outcome marks it done (`broadcast_finish`,
  after its own commit, so the last of several chunks finishing together sees them all).
- `broadcast_sweep` (beat, every minute) re-dispatches what is still planned after its
  task should have run — a lost message or a killed worker — and closes finished
  broadcasts a task could not close. Re-dispatching is harmless: rows are taken under
  lock, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from campaigns.gateways import Outgoing, gateway_for, throttle
from campaigns.models import GUIDE_POSTED, Broadcast, BroadcastStatus, GatewayKind
from campaigns.selectors.consent import profiling_withdrawn
from campaigns.services.consent import UNSUBSCRIBE_CHANNELS, unsubscribe_url
from campaigns.services.content import render, with_link
from campaigns.services.planning import broadcast_uses_profiling
from campaigns.services.tracking import tracked_url

CHUNK = 1000
BATCH = 200
MAX_ATTEMPTS = 5
STALE = timedelta(minutes=2)
# Channels whose message carries each delivery's own tracked link (/l/<token>) in place of
# the material's link: the inbox beside its text, SMS in its text. A WeCom group message
# keeps the material's link: one task per guide carries one text and one link card for
# all their customers, and a link per member would hand the guide a task per customer.
# A subscription message opens a mini-program page, not a link.
TRACKED_LINK_CHANNELS = (GatewayKind.INBOX, GatewayKind.SMS)


def retry_countdown(attempts: int) -> int:
    """Seconds before trying a transiently failed send again: 5, 10, 20, 40 … at most 5 min."""
    return int(min(300, 5 * 2 ** max(0, attempts - 1)))


def delivery_key(broadcast_id: int, member_id: int) -> str:
    return f"b{broadcast_id}:m{member_id}"


def broadcast_dispatch(*, broadcast_id: int) -> int:
    """Enqueue one task per range of about CHUNK planned deliveries (after commit); a
    guide-posted broadcast is one task for all its guides."""
    from campaigns.tasks import post_for_guides, send_broadcast_chunk

    channel = Broadcast.objects.filter(pk=broadcast_id).values_list("channel", flat=True).first()
    if channel in GUIDE_POSTED:
        transaction.on_commit(partial(post_for_guides.delay, broadcast_id))
        return 1

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT min(id), max(id) FROM (
                SELECT id, (row_number() OVER (ORDER BY id) - 1) / %s AS chunk
                FROM campaigns_delivery WHERE broadcast_id = %s AND status = 'planned'
            ) numbered GROUP BY chunk ORDER BY 1
            """,
            [CHUNK, broadcast_id],
        )
        ranges = cursor.fetchall()
    for low, high in ranges:
        transaction.on_commit(partial(send_broadcast_chunk.delay, broadcast_id, low, high))
    return len(ranges)


@dataclass
class ChunkStats:
    sent: int = 0
    recovered: int = 0
    suppressed: int = 0
    failed: int = 0
    retry: int = 0
    retry_attempts: int = 0  # the most tries any row still to retry has had


TAKE_SQL = """
SELECT d.id, d.member_id, d.attempts
FROM campaigns_delivery d
WHERE d.broadcast_id = %s AND d.id BETWEEN %s AND %s AND d.status = 'planned'
  AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= %s)
ORDER BY d.id LIMIT %s
FOR UPDATE SKIP LOCKED
"""

WRITE_SQL = """
UPDATE campaigns_delivery d
SET status = u.status, reason = u.reason, attempts = d.attempts + 1,
    sent_at = CASE WHEN u.status = 'sent' THEN %s ELSE d.sent_at END,
    provider_ref = u.ref, error = u.error, next_attempt_at = u.next_attempt_at
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])
    AS u(id, status, reason, ref, error, next_attempt_at)
WHERE d.id = u.id
"""

# Opt-outs and caps are checked again at send time: consent withdrawn after planning, or
# another campaign that reached the member first, wins.
RECHECK_SQL = """
SELECT m.id,
       EXISTS (SELECT 1 FROM campaigns_marketingoptout o
               WHERE o.member_id = m.id AND o.channel IN ('', %(channel)s)) AS opted_out,
       m.name,
       COALESCE((SELECT t.name FROM members_membertier s JOIN members_tier t ON t.id = s.tier_id
                 WHERE s.member_id = m.id), '') AS tier,
       COALESCE((SELECT a.balance FROM members_pointsaccount a
                 WHERE a.member_id = m.id AND a.kind = 'activity'), 0) AS points,
       COALESCE((SELECT COALESCE(NULLIF(g.display_name, ''), g.username)
                 FROM org_staff g WHERE g.id = m.guide_id), '') AS guide,
       m.guide_id
FROM members_member m WHERE m.id = ANY(%(ids)s)
"""


def _over_cap(broadcast: Broadcast, member_ids: list[int], day: Any) -> set[int]:
    """Members who already got as many messages as a cap allows, from other broadcasts
    sent on the same day or month."""
    from campaigns.models import FrequencyRule

    over: set[int] = set()
    month_start = day.replace(day=1)
    with connection.cursor() as cursor:
        for rule in FrequencyRule.objects.filter(channel__in=["", broadcast.channel]):
            for limit, since in ((rule.per_day, day), (rule.per_month, month_start)):
                if limit is None:
                    continue
                channel_test = " AND d.channel = %s" if rule.channel else ""
                params: list[Any] = [member_ids, since, day, broadcast.pk]
                if rule.channel:
                    params.append(rule.channel)
                cursor.execute(
                    "SELECT d.member_id FROM campaigns_delivery d WHERE d.member_id = ANY(%s) "
                    "AND d.status = 'sent' AND d.send_day >= %s AND d.send_day <= %s "
                    f"AND d.broadcast_id <> %s{channel_test} "
                    "GROUP BY d.member_id HAVING count(*) >= %s",
                    [*params, limit],
                )
                over |= {row[0] for row in cursor.fetchall()}
    return over


def send_chunk(
    *, broadcast_id: int, low: int, high: int, now: datetime | None = None
) -> ChunkStats:
    """Send the planned deliveries of one id range, BATCH rows per transaction."""
    broadcast = Broadcast.objects.select_related("material", "segment").get(pk=broadcast_id)
    stats = ChunkStats()
    if broadcast.status != BroadcastStatus.SENDING:
        return stats  # cancelled, or done meanwhile
    gateway = gateway_for(
        broadcast.channel,
        title=broadcast.material.title,
        link_url=broadcast.material.link_url,
        material=broadcast.material,
    )
    tracked = bool(broadcast.material.link_url) and broadcast.channel in TRACKED_LINK_CHANNELS
    uses_profiling = broadcast_uses_profiling(broadcast)
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            moment = now or timezone.now()
            cursor.execute(TAKE_SQL, [broadcast_id, low, high, moment, BATCH])
            rows = cursor.fetchall()
            if not rows:
                break
            member_ids = [member_id for _id, member_id, _attempts in rows]
            keys = {pk: delivery_key(broadcast_id, member_id) for pk, member_id, _a in rows}
            already = set() if gateway.idempotent else gateway.sent_keys(list(keys.values()))
            cursor.execute(RECHECK_SQL, {"channel": broadcast.channel, "ids": member_ids})
            people = {row[0]: row for row in cursor.fetchall()}
            capped = _over_cap(broadcast, member_ids, timezone.localdate(now or timezone.now()))
            unprofiled = profiling_withdrawn(member_ids) if uses_profiling else set()
            outcome: list[tuple[int, str, str, str, str]] = []
            to_send: list[tuple[int, int, Outgoing]] = []
            retry_at: dict[int, datetime] = {}
            for pk, member_id, attempts in rows:
                key = keys[pk]
                person = people.get(member_id)
                if key in already:
                    outcome.append((pk, "sent", "", "recovered", ""))
                    stats.recovered += 1
                elif person is None or person[1]:
                    outcome.append((pk, "suppressed", "opted_out", "", ""))
                    stats.suppressed += 1
                elif member_id in unprofiled:
                    outcome.append((pk, "suppressed", "no_profiling", "", ""))
                    stats.suppressed += 1
                elif member_id in capped:
                    outcome.append((pk, "suppressed", "frequency_cap", "", ""))
                    stats.suppressed += 1
                else:
                    variables = {
                        "name": person[2],
                        "tier": person[3],
                        "points": person[4],
                        "guide": person[5],
                        "unsubscribe": (
                            unsubscribe_url(member_id=member_id, channel=broadcast.channel)
                            if broadcast.channel in UNSUBSCRIBE_CHANNELS
                            else ""
                        ),
                    }
                    content = render(broadcast.material.body, variables)
                    link = tracked_url(pk) if tracked else ""
                    if broadcast.channel == GatewayKind.SMS:
                        content, link = with_link(content, link), ""
                    to_send.append((pk, attempts, Outgoing(key, member_id, content, link)))
            if to_send:
                throttle(gateway.kind, len(to_send))
            results = gateway.send_batch([message for _pk, _a, message in to_send])
            for (pk, attempts, _message), result in zip(to_send, results, strict=True):
                if result.status == "sent":
                    outcome.append((pk, "sent", "", result.ref, ""))
                    stats.sent += 1
                elif result.status in ("limit_reached", "not_friend"):
                    outcome.append((pk, "suppressed", result.status, "", ""))
                    stats.suppressed += 1
                elif result.status.startswith("failed") or attempts + 1 >= MAX_ATTEMPTS:
                    # A permanent refusal (bad content, a closed account…) is not retried.
                    outcome.append((pk, "failed", "", "", result.status))
                    stats.failed += 1
                else:
                    outcome.append((pk, "planned", "", "", result.status))
                    retry_at[pk] = moment + timedelta(seconds=retry_countdown(attempts + 1))
                    stats.retry += 1
                    stats.retry_attempts = max(stats.retry_attempts, attempts + 1)
            cursor.execute(
                WRITE_SQL,
                [
                    now or timezone.now(),
                    [o[0] for o in outcome],
                    [o[1] for o in outcome],
                    [o[2] for o in outcome],
                    [o[3] for o in outcome],
                    [o[4] for o in outcome],
                    [retry_at.get(o[0]) for o in outcome],
                ],
            )
            if broadcast.channel == GatewayKind.WECOM:
                _count_guide_tasks(cursor, broadcast_id, outcome, rows, people)
        if stats.retry:
            break  # transient errors: try again later rather than spin on them now
    if stats.retry:
        from campaigns.tasks import send_broadcast_chunk

        send_broadcast_chunk.apply_async(
            (broadcast_id, low, high), countdown=retry_countdown(stats.retry_attempts)
        )
    else:
        broadcast_finish(broadcast_id=broadcast_id)
    return stats


FINISH_SQL = """
UPDATE campaigns_broadcast b SET status = 'done'
WHERE b.id = %(id)s AND b.status = 'sending'
  AND NOT EXISTS (SELECT 1 FROM campaigns_delivery d
                  WHERE d.broadcast_id = b.id AND d.status = 'planned')
  AND NOT EXISTS (SELECT 1 FROM campaigns_guidesendtask t
                  WHERE t.broadcast_id = b.id AND t.handed_at IS NULL AND t.error = '')
"""


def broadcast_finish(*, broadcast_id: int) -> bool:
    """Mark a sending broadcast done when nothing of it is left to send (no planned
    delivery, no guide task waiting to be handed over); True when it was marked."""
    with connection.cursor() as cursor:
        cursor.execute(FINISH_SQL, {"id": broadcast_id})
        return bool(cursor.rowcount)


GUIDE_TASKS_SQL = """
INSERT INTO campaigns_guidesendtask (broadcast_id, guide_id, recipients, created_at,
                                     handed_at, provider_ref, attempts, error)
SELECT %s, u.guide_id, u.n, now(), now(), '', 1, ''
FROM unnest(%s::bigint[], %s::int[]) AS u(guide_id, n)
ON CONFLICT (broadcast_id, guide_id)
DO UPDATE SET recipients = campaigns_guidesendtask.recipients + EXCLUDED.recipients
"""


def _count_guide_tasks(
    cursor: Any,
    broadcast_id: int,
    outcome: list[tuple[int, str, str, str, str]],
    rows: list[tuple[int, int, int]],
    people: dict[int, tuple[Any, ...]],
) -> None:
    """A WeCom group message is a task in each guide's WeCom: count the customers handed
    to each guide, in the same transaction as the deliveries' status."""
    member_of = {pk: member_id for pk, member_id, _attempts in rows}
    per_guide: dict[int, int] = {}
    for pk, status, *_rest in outcome:
        person = people.get(member_of[pk])
        if status == "sent" and person is not None and person[6] is not None:
            per_guide[person[6]] = per_guide.get(person[6], 0) + 1
    if per_guide:
        cursor.execute(GUIDE_TASKS_SQL, [broadcast_id, list(per_guide), list(per_guide.values())])


def post_guide_tasks(*, broadcast_id: int, now: datetime | None = None) -> ChunkStats:
    """Hand a guide-posted broadcast to WeCom for each guide not handed yet — a Moments
    task, or a group message to their customer groups — BATCH guides per transaction,
    taken under lock, asking the gateway first which keys already went (exactly once per
    (broadcast, guide) across crashes, as for members)."""
    broadcast = Broadcast.objects.select_related("material", "segment").get(pk=broadcast_id)
    stats = ChunkStats()
    if broadcast.status != BroadcastStatus.SENDING:
        return stats
    gateway = gateway_for(broadcast.channel, material=broadcast.material)
    content = render(broadcast.material.body, {})
    moment = now or timezone.now()
    retry_in = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, guide_id, attempts FROM campaigns_guidesendtask "
                "WHERE broadcast_id = %s AND handed_at IS NULL AND error = '' "
                "AND (next_attempt_at IS NULL OR next_attempt_at <= %s) "
                "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                [broadcast_id, moment, BATCH],
            )
            rows = cursor.fetchall()
            if not rows:
                break
            keys = {pk: f"b{broadcast_id}:g{guide_id}" for pk, guide_id, _a in rows}
            already = set() if gateway.idempotent else gateway.sent_keys(list(keys.values()))
            outgoing = [
                (pk, attempts, Outgoing(keys[pk], guide_id, content))
                for pk, guide_id, attempts in rows
                if keys[pk] not in already
            ]
            stats.recovered += len(rows) - len(outgoing)
            if outgoing:
                throttle(gateway.kind, len(outgoing))
            results = gateway.send_batch([message for _pk, _a, message in outgoing])
            # (id, handed_at, provider_ref, error, next_attempt_at) per task
            done: list[tuple[int, datetime | None, str, str, datetime | None]] = [
                (pk, moment, "recovered", "", None) for pk, _g, _a in rows if keys[pk] in already
            ]
            for (pk, attempts, _message), result in zip(outgoing, results, strict=True):
                if result.status == "sent":
                    done.append((pk, moment, result.ref, "", None))
                    stats.sent += 1
                elif result.status in ("transient", "timeout") and attempts + 1 < MAX_ATTEMPTS:
                    wait = retry_countdown(attempts + 1)
                    done.append((pk, None, "", "", moment + timedelta(seconds=wait)))
                    retry_in = max(retry_in, wait)
                    stats.retry += 1
                else:
                    # Refused for good (no customer group, a bad account…): no task for
                    # this guide, and the broadcast can finish.
                    done.append((pk, None, "", result.status[:100], None))
                    stats.failed += 1
            cursor.execute(
                "UPDATE campaigns_guidesendtask t SET handed_at = u.handed_at, "
                "provider_ref = u.ref, error = u.error, next_attempt_at = u.next_attempt_at, "
                "attempts = t.attempts + CASE WHEN u.ref = 'recovered' THEN 0 ELSE 1 END "
                "FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[], %s::text[], "
                "%s::timestamptz[]) AS u(id, handed_at, ref, error, next_attempt_at) "
                "WHERE t.id = u.id",
                [[d[i] for d in done] for i in range(5)],
            )
        if stats.retry:
            break
    if stats.retry:
        from campaigns.tasks import post_for_guides

        post_for_guides.apply_async((broadcast_id,), countdown=retry_in)
    else:
        broadcast_finish(broadcast_id=broadcast_id)
    return stats


def broadcast_sweep(*, now: datetime | None = None) -> int:
    """Re-dispatch broadcasts still holding planned rows after their tasks should have
    run, and mark finished ones done. Returns the chunks re-dispatched."""
    now = now or timezone.now()
    redispatched = 0
    for broadcast in Broadcast.objects.filter(
        status=BroadcastStatus.SENDING, planned_at__lt=now - STALE
    ):
        pending: QuerySet[Any]
        due: QuerySet[Any]
        if broadcast.channel in GUIDE_POSTED:
            pending = broadcast.guide_tasks.filter(handed_at__isnull=True, error="")
            due = pending.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        else:
            pending = broadcast.deliveries.filter(status="planned")
            due = pending.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        if due.exists():
            with transaction.atomic():
                redispatched += broadcast_dispatch(broadcast_id=broadcast.pk)
        elif not pending.exists():  # rows waiting out a backoff have their own task
            broadcast_finish(broadcast_id=broadcast.pk)
    return redispatched
