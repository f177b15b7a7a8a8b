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

from campaigns.models import GatewayKind
from scrm.core.embedded_db import database_url

WECOM_MONTHLY_LIMIT = 4


@dataclass(frozen=True)
class SendResult:
    status: str  # sent / transient / timeout / limit_reached / not_friend
    ref: str = ""


class Gateway(Protocol):
    kind: str
    # True when the provider itself drops a repeated key; otherwise the sender asks
    # `sent_keys` before any resend.
    idempotent: bool

    def send(self, *, key: str, member_id: int, content: str) -> SendResult: ...

    def sent_keys(self, keys: list[str]) -> set[str]: ...


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

    def _record(self, key: str, member_id: int, content: str, outcome: str) -> int:
        row = (
            _outside_connection()
            .execute(
                "INSERT INTO campaigns_sandboxcall (gateway, member_id, key, content, outcome, "
                "created_at) VALUES (%s, %s, %s, %s, %s, now()) RETURNING id",
                [self.kind, member_id, key, content, outcome],
            )
            .fetchone()
        )
        return int(row[0]) if row else 0

    def send(self, *, key: str, member_id: int, content: str) -> SendResult:
        if self.latency:
            time.sleep(self.latency)
        conn = _outside_connection()
        fault = conn.execute(
            """
            UPDATE campaigns_sandboxfault SET times = times - 1
            WHERE id = (SELECT id FROM campaigns_sandboxfault
                        WHERE gateway = %s AND times > 0
                          AND (member_id = %s OR member_id IS NULL)
                        ORDER BY member_id NULLS LAST, id LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING kind
            """,
            [self.kind, member_id],
        ).fetchone()
        if fault is not None:
            self._record(key, member_id, content, fault[0])
            return SendResult(fault[0])
        if self.kind == GatewayKind.WECOM:
            month_start = timezone.localtime().replace(
                day=1, hour=0, minute=0, second=0, microsecond=0
            )
            row = conn.execute(
                "SELECT count(*) FROM campaigns_sandboxcall WHERE gateway = %s "
                "AND member_id = %s AND outcome = 'sent' AND created_at >= %s",
                [self.kind, member_id, month_start],
            ).fetchone()
            if row and row[0] >= WECOM_MONTHLY_LIMIT:
                self._record(key, member_id, content, "limit_reached")
                return SendResult("limit_reached")
        call_id = self._record(key, member_id, content, "sent")
        return SendResult("sent", ref=f"sandbox-{call_id}")

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

    def send(self, *, key: str, member_id: int, content: str) -> SendResult:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO campaigns_inboxmessage (member_id, key, title, body, link_url, "
                "created_at) VALUES (%s, %s, %s, %s, %s, now()) "
                "ON CONFLICT (key) DO NOTHING RETURNING id",
                [member_id, key, self.title[:100], content, self.link_url],
            )
            row = cursor.fetchone()
        return SendResult("sent", ref=f"inbox-{row[0]}" if row else "inbox-existing")

    def sent_keys(self, keys: list[str]) -> set[str]:
        return set()  # idempotent: never asked


def gateway_for(kind: str, *, title: str = "", link_url: str = "") -> Gateway:
    """The gateway of a channel. The in-app inbox is ours; outside providers (WeCom, SMS,
    subscription messages) plug in here when their credentials are configured — until
    then, and always in tests and demos, the sandbox answers for them."""
    if kind == GatewayKind.INBOX:
        return InboxGateway(title, link_url)
    return SandboxGateway(kind)


def close_outside_connection() -> None:
    """Close this thread's sandbox connection (tests do, so their database can be dropped)."""
    conn = getattr(_local, "conn", None)
    if conn is not None and not conn.closed:
        conn.close()
    _local.conn = None
