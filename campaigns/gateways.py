"""Message gateways behind one interface. The sandbox stands in for the outside world
(WeCom, SMS, subscription messages): it records every call on its own database
connection, so a call that "left" stays recorded even when the sender crashes before
committing; it never deduplicates, can be told to fail (transient errors, timeouts,
"limit reached", "not a friend"), and keeps WeCom's limit of four group messages per
customer a month."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from django.db import connection
from django.utils import timezone

from campaigns.models import GUIDE_POSTED, GatewayKind, Material
from scrm.core.embedded_db import database_url

WECOM_MONTHLY_LIMIT = 4


@dataclass(frozen=True)
class SendResult:
    status: str  # sent / transient / timeout / limit_reached / not_friend
    ref: str = ""


@dataclass(frozen=True)
class Outgoing:
    key: str  # the delivery's key: what a provider is asked about before a resend
    member_id: int
    content: str
    # The delivery's own tracked link, for a gateway that carries a link beside the text
    # (the in-app inbox); "" for none. Text-only channels (SMS) get it in `content`.
    link_url: str = ""


class Gateway(Protocol):
    kind: str
    # True when the provider itself drops a repeated key; otherwise the sender asks
    # `sent_keys` before any resend.
    idempotent: bool

    def send_batch(self, messages: list[Outgoing]) -> list[SendResult]:
        """One call for many recipients (providers take lists: WeCom group messages,
        batch SMS); one result per message, in order."""
        ...

    def sent_keys(self, keys: list[str]) -> set[str]: ...


def send_one(gateway: Gateway, *, key: str, member_id: int, content: str) -> SendResult:
    return gateway.send_batch([Outgoing(key, member_id, content)])[0]


_local = threading.local()


def _outside_connection() -> psycopg.Connection[Any]:
    """A connection of its own, in autocommit, per process and thread."""
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed or getattr(_local, "pid", None) != os.getpid():
        conn = psycopg.connect(database_url(connection.settings_dict), autocommit=True)
        _local.conn, _local.pid = conn, os.getpid()
    return conn


class SandboxGateway:
    idempotent = False

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.latency = float(os.environ.get("SCRM_SANDBOX_LATENCY_MS", "0")) / 1000

    def send_batch(self, messages: list[Outgoing]) -> list[SendResult]:
        if not messages:
            return []
        if self.latency:
            time.sleep(self.latency * len(messages))
        conn = _outside_connection()
        member_ids = [m.member_id for m in messages]
        outcomes = ["sent"] * len(messages)
        # Faults and the calls they answer are consumed and recorded together.
        with conn.transaction():
            faults = conn.execute(
                "SELECT id, member_id, times, kind FROM campaigns_sandboxfault "
                "WHERE gateway = %s AND times > 0 AND (member_id = ANY(%s) OR member_id IS NULL) "
                "ORDER BY member_id NULLS LAST, id FOR UPDATE",
                [self.kind, member_ids],
            ).fetchall()
            left = {fault_id: times for fault_id, _m, times, _k in faults}
            for index, message in enumerate(messages):
                for fault_id, member_id, _times, kind in faults:
                    if left[fault_id] > 0 and member_id in (message.member_id, None):
                        left[fault_id] -= 1
                        outcomes[index] = kind
                        break
            if faults:
                conn.execute(
                    "UPDATE campaigns_sandboxfault f SET times = u.times "
                    "FROM unnest(%s::bigint[], %s::int[]) AS u(id, times) WHERE f.id = u.id",
                    [list(left), list(left.values())],
                )
            if self.kind == GatewayKind.WECOM:
                self._monthly_limit(conn, messages, outcomes)
            rows = conn.execute(
                "INSERT INTO campaigns_sandboxcall (gateway, member_id, key, content, outcome, "
                "created_at) SELECT %s, u.member_id, u.key, u.content, u.outcome, now() "
                "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) "
                "AS u(member_id, key, content, outcome) RETURNING key, id",
                [
                    self.kind,
                    member_ids,
                    [m.key for m in messages],
                    [m.content for m in messages],
                    outcomes,
                ],
            ).fetchall()
        call_ids = dict(rows)  # a batch holds each delivery's key once
        return [
            SendResult(outcome, ref=f"sandbox-{call_ids[m.key]}" if outcome == "sent" else "")
            for m, outcome in zip(messages, outcomes, strict=True)
        ]

    def _monthly_limit(
        self, conn: psycopg.Connection[Any], messages: list[Outgoing], outcomes: list[str]
    ) -> None:
        """WeCom lets a customer receive four group messages a month."""
        month_start = timezone.localtime().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        received = dict(
            conn.execute(
                "SELECT member_id, count(*) FROM campaigns_sandboxcall WHERE gateway = %s "
                "AND member_id = ANY(%s) AND outcome = 'sent' AND created_at >= %s "
                "GROUP BY member_id",
                [self.kind, [m.member_id for m in messages], month_start],
            ).fetchall()
        )
        for index, message in enumerate(messages):
            if outcomes[index] != "sent":
                continue
            if received.get(message.member_id, 0) >= WECOM_MONTHLY_LIMIT:
                outcomes[index] = "limit_reached"
            else:
                received[message.member_id] = received.get(message.member_id, 0) + 1

    def sent_keys(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        rows = _outside_connection().execute(
            "SELECT DISTINCT key FROM campaigns_sandboxcall "
            "WHERE key = ANY(%s) AND outcome = 'sent'",
            [keys],
        )
        return {row[0] for row in rows.fetchall()}


class InboxGateway:
    """Our own in-app inbox: the message is a row written in the sender's transaction, so
    it commits or rolls back with the delivery's status, and its unique key makes a
    resend a no-op."""

    kind: str = GatewayKind.INBOX
    idempotent = True

    def __init__(self, title: str = "", link_url: str = "") -> None:
        self.title = title
        self.link_url = link_url

    def send_batch(self, messages: list[Outgoing]) -> list[SendResult]:
        if not messages:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO campaigns_inboxmessage (member_id, key, title, body, link_url, "
                "created_at) SELECT u.member_id, u.key, %s, u.body, u.link_url, now() "
                "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) "
                "AS u(member_id, key, body, link_url) "
                "ON CONFLICT (key) DO NOTHING RETURNING key, id",
                [
                    self.title[:100],
                    [m.member_id for m in messages],
                    [m.key for m in messages],
                    [m.content for m in messages],
                    # The delivery's tracked link, else the material's own.
                    [m.link_url or self.link_url for m in messages],
                ],
            )
            written = dict(cursor.fetchall())
        return [
            SendResult(
                "sent", ref=f"inbox-{written[m.key]}" if m.key in written else "inbox-existing"
            )
            for m in messages
        ]

    def sent_keys(self, keys: list[str]) -> set[str]:
        return set()  # idempotent: never asked


def throttle(kind: str, count: int) -> float:
    """Wait for `count` messages' slot in the gateway's rate limit (shared by every worker
    through its `GatewayThrottle` row); returns the seconds waited. No row: no limit."""
    row = (
        _outside_connection()
        .execute(
            """
            UPDATE campaigns_gatewaythrottle
            SET free_at = greatest(coalesce(free_at, now()), now())
                          + make_interval(secs => %s::float / per_second)
            WHERE gateway = %s AND per_second > 0
            RETURNING extract(epoch FROM free_at - now()) - %s::float / per_second
            """,
            [count, kind, count],
        )
        .fetchone()
    )
    wait = max(0.0, float(row[0])) if row else 0.0
    if wait:
        time.sleep(wait)
    return wait


def gateway_for(
    kind: str, *, title: str = "", link_url: str = "", material: Material | None = None
) -> Gateway:
    """The gateway of a channel. The in-app inbox is ours; WeCom (WECOM_CORP_ID,
    WECOM_SECRET), Alibaba Cloud SMS (ALIYUN_SMS_*) and mini-program subscription messages
    (WECHAT_APP_ID/SECRET with WECHAT_SUBSCRIBE_TEMPLATE_ID) are called when configured.
    Until then — and always in tests and demos — the sandbox answers for them."""
    if kind == GatewayKind.INBOX:
        return InboxGateway(title, link_url)
    if kind in GUIDE_POSTED:
        from campaigns.wecom import wecom_guide_post_gateway

        posts = wecom_guide_post_gateway(kind, material)
        if posts is not None:
            return posts
    if kind == GatewayKind.WECOM:
        from campaigns.wecom import wecom_gateway  # campaigns.wecom imports this module

        wecom = wecom_gateway(material=material, title=title, link_url=link_url)
        if wecom is not None:
            return wecom
    if kind == GatewayKind.SMS:
        from campaigns.sms import sms_gateway

        sms = sms_gateway()
        if sms is not None:
            return sms
    if kind == GatewayKind.SUBSCRIPTION:
        from campaigns.subscription import subscription_gateway

        subscription = subscription_gateway()
        if subscription is not None:
            return subscription
    return SandboxGateway(kind)


def close_outside_connection() -> None:
    """Close this thread's sandbox connection (tests do, so their database can be dropped)."""
    conn = getattr(_local, "conn", None)
    if conn is not None and not conn.closed:
        conn.close()
    _local.conn = None
