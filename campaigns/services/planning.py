"""Planning a broadcast: its audience after suppression, one delivery row per member,
set-based (a million members is a few statements, not a million).

A member is not sent to when they opted out of marketing (on this channel or all), when
the audience was chosen by behaviour or RFM and they withdrew profiling consent, when
the channel has no way to reach them (no WeCom contact or no guide to send through, no
phone, no openid), or when a
frequency cap would be passed: caps count every delivery planned or sent to the member
on the same local day / month, on the channel or across all of them, by every campaign.

A broadcast with a control group (`holdout_percent`) then holds back that share of the
members it would send to, drawn at random: their delivery is "held_out", with `sent_at`
the planning time (when they would have been sent), so the funnel can compare their
purchases with the sent members'. Held-out rows are never sent, never count towards a
cap (the member got no message) and never convert. Guide-posted channels have no
control group: their audience is the guides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import (
    GUIDE_POSTED,
    Broadcast,
    BroadcastStatus,
    DeliveryStatus,
    FrequencyRule,
    GatewayKind,
)
from campaigns.selectors.consent import PROFILING_WITHDRAWN_SQL
from campaigns.services.content import content_check
from members.segments.rules import rules_use_profiling
from members.services.errors import MemberError
from members.services.segments import segment_members

# The identity a channel needs to reach a member (none: everyone can be reached).
CHANNEL_IDENTITY = {
    GatewayKind.WECOM: "wecom_external",
    GatewayKind.SMS: "phone",
    GatewayKind.SUBSCRIPTION: "openid",
    GatewayKind.INBOX: None,
}


@dataclass
class Preview:
    audience: int = 0
    to_send: int = 0  # the control group not included
    suppressed: dict[str, int] = field(default_factory=dict)
    held_out: int = 0  # the control group: would be sent, deliberately not


def holdout_count(sendable: int, percent: int) -> int:
    """How many of `sendable` members go to a control group of `percent` % (rounded
    down: the control group never exceeds its share)."""
    return sendable * max(0, percent) // 100


MAX_HOLDOUT_PERCENT = 50


def holdout_and_cost_check(holdout_percent: int, cost: Decimal) -> None:
    """A control group of 0–50 % and a cost of at least zero (yuan, to the fen)."""
    if not 0 <= holdout_percent <= MAX_HOLDOUT_PERCENT:
        raise MemberError(
            "holdout_percent",
            _("The control group is from 0 to %(max)s %% of the audience.")
            % {"max": MAX_HOLDOUT_PERCENT},
        )
    if not cost.is_finite() or cost < 0:
        raise MemberError("cost", _("The cost is an amount in yuan, 0 or more."))
    if cost >= Decimal("1e10"):  # the column holds 12 digits, 2 of them fen
        raise MemberError("cost", _("The cost is too large."))
    if cost != cost.quantize(Decimal("0.01")):
        raise MemberError("cost", _("The cost is in yuan to the fen: at most 2 decimals."))


def _audience_sql(broadcast: Broadcast) -> tuple[str, list[Any]]:
    """The segment's members; a store's broadcast reaches only that store's members."""
    if broadcast.segment is None:
        # Only a journey's wave has no segment: its audience is always given.
        raise MemberError("no_audience", _("This broadcast has no audience."))
    members = segment_members(broadcast.segment)
    if broadcast.store_id is not None:
        members = members.filter(home_store_id=broadcast.store_id)
    sql, params = members.values("pk").query.sql_with_params()
    return sql, list(params)


def broadcast_uses_profiling(broadcast: Broadcast) -> bool:
    """Whether the broadcast's audience was chosen by behaviour or RFM: then members who
    withdrew profiling consent are not sent to (PIPL: a personalised push must respect
    the refusal of profiling)."""
    return broadcast.segment is not None and rules_use_profiling(broadcast.segment.rules)


def _caps(channel: str) -> list[FrequencyRule]:
    return list(FrequencyRule.objects.filter(channel__in=["", channel]))


def _classify_sql(
    broadcast: Broadcast, day: date, *, audience: tuple[str, list[Any]] | None = None
) -> tuple[str, list[Any]]:
    """SELECT member_id, reason ('' = to send) for every member of the audience: the
    broadcast's segment, or `audience` when given (SQL selecting one column of member
    ids, and its parameters — a journey wave passes the members reaching its step)."""
    audience_sql, params = audience if audience is not None else _audience_sql(broadcast)
    params = list(params)
    identity = CHANNEL_IDENTITY[GatewayKind(broadcast.channel)]
    reasons: list[str] = [
        "WHEN EXISTS (SELECT 1 FROM campaigns_marketingoptout o WHERE o.member_id = a.id "
        "AND o.channel IN ('', %s)) THEN 'opted_out'"
    ]
    reason_params: list[Any] = [broadcast.channel]
    if broadcast_uses_profiling(broadcast):
        reasons.append(f"WHEN {PROFILING_WITHDRAWN_SQL} THEN 'no_profiling'")
    if identity is not None:
        reasons.append(
            "WHEN NOT EXISTS (SELECT 1 FROM members_identity i WHERE i.member_id = a.id "
            "AND i.kind = %s) THEN 'no_identity'"
        )
        reason_params.append(identity)
    if broadcast.channel == GatewayKind.WECOM:
        # A WeCom group message goes out through the member's guide: without one, the
        # member is nobody's WeCom customer.
        reasons.append(
            "WHEN NOT EXISTS (SELECT 1 FROM members_member g WHERE g.id = a.id "
            "AND g.guide_id IS NOT NULL) THEN 'not_friend'"
        )
    month_start = day.replace(day=1)
    for rule in _caps(broadcast.channel):
        channel_test = "" if not rule.channel else " AND d.channel = %s"
        for limit, since in ((rule.per_day, day), (rule.per_month, month_start)):
            if limit is None:
                continue
            reasons.append(
                "WHEN (SELECT count(*) FROM campaigns_delivery d WHERE d.member_id = a.id "
                "AND d.status IN ('planned', 'sent') AND d.send_day >= %s AND d.send_day <= %s"
                f"{channel_test} AND d.broadcast_id <> %s) >= %s THEN 'frequency_cap'"
            )
            reason_params += [since, day]
            if rule.channel:
                reason_params.append(rule.channel)
            reason_params += [broadcast.pk, limit]
    sql = (
        f"SELECT a.id AS member_id, CASE {' '.join(reasons)} ELSE '' END AS reason "
        f"FROM ({audience_sql}) AS a(id)"
    )
    return sql, [*reason_params, *params]  # the CASE comes before the audience in the text


def _posting_guides_sql(broadcast: Broadcast) -> tuple[str, list[Any]]:
    """Active guides who post a guide-posted broadcast — of its store, or every store's
    for head office's — with their customer count."""
    store_test = customer_test = ""
    params: list[Any] = []
    if broadcast.store_id is not None:
        # A store's post counts the guide's customers of that store.
        customer_test = " AND m.home_store_id = %s"
        store_test = (
            " AND EXISTS (SELECT 1 FROM org_staff_stores ss WHERE ss.staff_id = s.id "
            "AND ss.store_id = %s)"
        )
        params += [broadcast.store_id, broadcast.store_id]
    sql = (
        "SELECT s.id, (SELECT count(*) FROM members_member m WHERE m.guide_id = s.id "
        f"AND m.merged_into_id IS NULL{customer_test}) AS customers "
        f"FROM org_staff s WHERE s.role = 'guide' AND s.is_active{store_test}"
    )
    return sql, params


def _plan_guide_posts(broadcast: Broadcast, now: datetime) -> Preview:
    """One task per posting guide (planning twice adds nothing); no guide: refused."""
    sql, params = _posting_guides_sql(broadcast)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO campaigns_guidesendtask (broadcast_id, guide_id, recipients, "
            "created_at, provider_ref, attempts, error) "
            f"SELECT %s, g.id, g.customers, %s, '', 0, '' FROM ({sql}) AS g "
            "ON CONFLICT (broadcast_id, guide_id) DO NOTHING",
            [broadcast.pk, now, *params],
        )
        cursor.execute(
            "SELECT count(*) FROM campaigns_guidesendtask WHERE broadcast_id = %s",
            [broadcast.pk],
        )
        row = cursor.fetchone()
    guides = int(row[0]) if row else 0
    if not guides:
        raise MemberError("audience_empty", _("No guide to post it: the audience is empty."))
    broadcast.planned_at = now
    broadcast.status = BroadcastStatus.SENDING
    broadcast.save(update_fields=["planned_at", "status"])
    return Preview(audience=guides, to_send=guides)


def _send_day(broadcast: Broadcast, now: datetime) -> date:
    return timezone.localdate(broadcast.scheduled_at or now)


def broadcast_preview(*, broadcast: Broadcast, now: datetime | None = None) -> Preview:
    """The audience now, and how many each suppression reason would hold back (for a
    guide-posted channel: the guides who will post it)."""
    now = now or timezone.now()
    if broadcast.channel in GUIDE_POSTED:
        with connection.cursor() as cursor:
            sql, params = _posting_guides_sql(broadcast)
            cursor.execute(f"SELECT count(*) FROM ({sql}) AS g", params)
            row = cursor.fetchone()
        guides = int(row[0]) if row else 0
        return Preview(audience=guides, to_send=guides)
    sql, params = _classify_sql(broadcast, _send_day(broadcast, now))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT reason, count(*) FROM ({sql}) AS c GROUP BY reason", params)
        rows = dict(cursor.fetchall())
    sendable = rows.pop("", 0)
    held_out = holdout_count(sendable, broadcast.holdout_percent)
    return Preview(
        audience=sendable + sum(rows.values()),
        to_send=sendable - held_out,
        suppressed=dict(sorted(rows.items())),
        held_out=held_out,
    )


# The audience's rows not planned yet, each sendable one numbered in a random order: the
# first `holdout_count` of them are the control group. Rows planned by an earlier run
# are left out (planning twice adds nothing, and draws nothing again).
PLAN_SQL = """
INSERT INTO campaigns_delivery (broadcast_id, member_id, channel, send_day, status,
                                reason, sent_at, attempts, provider_ref, error)
SELECT %s, c.member_id, %s, %s,
       CASE WHEN c.reason <> '' THEN 'suppressed'
            WHEN c.draw <= c.sendable * %s / 100 THEN 'held_out'
            ELSE 'planned' END,
       c.reason,
       CASE WHEN c.reason = '' AND c.draw <= c.sendable * %s / 100 THEN %s::timestamptz END,
       0, '', ''
FROM (
    SELECT n.member_id, n.reason,
           row_number() OVER (PARTITION BY n.reason = '' ORDER BY random()) AS draw,
           count(*) OVER (PARTITION BY n.reason = '') AS sendable
    FROM ({classify}) AS n
    WHERE NOT EXISTS (SELECT 1 FROM campaigns_delivery x
                      WHERE x.broadcast_id = %s AND x.member_id = n.member_id)
) AS c
ON CONFLICT (broadcast_id, member_id) DO NOTHING
"""


@transaction.atomic
def broadcast_plan(*, broadcast: Broadcast, now: datetime | None = None) -> Preview:
    """Write one delivery per audience member (planned, held out in the control group,
    or suppressed with its reason). Planning twice adds nothing; an empty audience is
    refused and writes nothing."""
    now = now or timezone.now()
    locked = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
    if locked.status not in (BroadcastStatus.APPROVED, BroadcastStatus.SENDING):
        raise MemberError("not_approved", _("Only an approved broadcast is planned."))
    content_check(locked.material.body)
    if locked.channel in GUIDE_POSTED:
        return _plan_guide_posts(locked, now)
    day = _send_day(locked, now)
    # One planner at a time: caps count other broadcasts' planned rows, so two plans
    # running at once could each let a member through.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('broadcast-planning'))")
        sql, params = _classify_sql(locked, day)
        percent = locked.holdout_percent
        cursor.execute(
            PLAN_SQL.format(classify=sql),
            [locked.pk, locked.channel, day, percent, percent, now, *params, locked.pk],
        )
        cursor.execute(
            "SELECT status, reason, count(*) FROM campaigns_delivery WHERE broadcast_id = %s "
            "GROUP BY status, reason",
            [locked.pk],
        )
        rows = cursor.fetchall()
    if not rows:
        raise MemberError("audience_empty", _("The audience is empty: nobody to send to."))
    locked.planned_at = now
    locked.status = BroadcastStatus.SENDING
    locked.save(update_fields=["planned_at", "status"])
    preview = Preview(audience=sum(n for _s, _r, n in rows))
    for status, reason, n in rows:
        if status == DeliveryStatus.HELD_OUT:
            preview.held_out += n
        elif reason:
            preview.suppressed[reason] = preview.suppressed.get(reason, 0) + n
        else:  # planned, sent or failed
            preview.to_send += n
    preview.suppressed = dict(sorted(preview.suppressed.items()))
    return preview
