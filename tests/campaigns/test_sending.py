"""Sending exactly once: every planned member gets one message whatever happens — two
tasks on the same chunk, a crash after sending and before committing, a real worker
killed mid-broadcast, a rolled-back transaction, an opt-out after planning."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connections, transaction
from django.utils import timezone

from campaigns.gateways import gateway_for, send_one
from campaigns.models import (
    Broadcast,
    Delivery,
    InboxMessage,
    MarketingOptOut,
    Material,
    SandboxCall,
    SandboxFault,
)
from campaigns.services.planning import broadcast_plan
from campaigns.services.sending import (
    broadcast_dispatch,
    broadcast_sweep,
    delivery_key,
    send_chunk,
)
from members.models import Member, Segment
from tests.conftest import Org, start_worker, stop_worker, wait_for
from tests.members.factories import MemberFactory, phone_identity

pytestmark = pytest.mark.django_db(transaction=True)

EVERYONE = {
    "op": "and",
    "rules": [{"field": "gender", "operator": "in", "value": ["f", "m", "u"]}],
}


def planned_broadcast(org: Org, *, extra: int = 0, channel: str = "sms") -> Broadcast:
    """Everyone, by SMS through the sandbox (the outside world, recorded call by call)."""
    for _n in range(extra):
        MemberFactory()
    for member in Member.objects.filter(identities__isnull=True):
        phone_identity(member, f"+86137{member.pk:08d}")
    segment = Segment.objects.create(name="全部", rules=EVERYONE)
    material = Material.objects.create(kind="text", title="会员日", body="{name}，会员日快乐")
    broadcast = Broadcast.objects.create(
        name="会员日",
        channel=channel,
        material=material,
        segment=segment,
        created_by=org.hq_operator,
        status="approved",
    )
    broadcast_plan(broadcast=broadcast)
    return broadcast


def calls(broadcast: Broadcast) -> dict[str, int]:
    """Sent calls the outside world received, per delivery key."""
    counts: dict[str, int] = {}
    for key in SandboxCall.objects.filter(
        key__startswith=f"b{broadcast.pk}:", outcome="sent"
    ).values_list("key", flat=True):
        counts[key] = counts.get(key, 0) + 1
    return counts


def expected_keys(broadcast: Broadcast) -> set[str]:
    return {
        delivery_key(broadcast.pk, m)
        for m in Delivery.objects.filter(broadcast=broadcast).values_list("member_id", flat=True)
    }


def bounds(broadcast: Broadcast) -> tuple[int, int]:
    ids = list(Delivery.objects.filter(broadcast=broadcast).values_list("id", flat=True))
    return min(ids), max(ids)


def test_each_member_gets_one_message_with_their_name(org: Org) -> None:
    broadcast = planned_broadcast(org)
    low, high = bounds(broadcast)
    stats = send_chunk(broadcast_id=broadcast.pk, low=low, high=high)
    assert stats.sent == Member.objects.count() == 5
    assert calls(broadcast) == dict.fromkeys(expected_keys(broadcast), 1)
    wang = org.member_of_guide_a1
    content = SandboxCall.objects.get(key=delivery_key(broadcast.pk, wang.pk)).content
    assert content == f"{wang.name}，会员日快乐"
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert send_chunk(broadcast_id=broadcast.pk, low=low, high=high).sent == 0


def test_two_tasks_on_the_same_chunk_send_once(org: Org) -> None:
    broadcast = planned_broadcast(org, extra=195)
    low, high = bounds(broadcast)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            send_chunk(broadcast_id=broadcast.pk, low=low, high=high)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert calls(broadcast) == dict.fromkeys(expected_keys(broadcast), 1)
    assert Delivery.objects.filter(broadcast=broadcast, status="sent").count() == 200


def test_a_crash_after_sending_is_recovered_without_a_resend(org: Org) -> None:
    broadcast = planned_broadcast(org)
    gateway = gateway_for("sms")
    # A worker sent two messages, then died before committing their status.
    for member in (org.member_of_guide_a1, org.member_b1):
        send_one(
            gateway, key=delivery_key(broadcast.pk, member.pk), member_id=member.pk, content="x"
        )
    low, high = bounds(broadcast)
    stats = send_chunk(broadcast_id=broadcast.pk, low=low, high=high)
    assert (stats.sent, stats.recovered) == (3, 2)
    assert calls(broadcast) == dict.fromkeys(expected_keys(broadcast), 1)


def test_an_opt_out_after_planning_is_honoured(org: Org) -> None:
    broadcast = planned_broadcast(org)
    MarketingOptOut.objects.create(member=org.member_b1, channel="")
    low, high = bounds(broadcast)
    stats = send_chunk(broadcast_id=broadcast.pk, low=low, high=high)
    assert (stats.sent, stats.suppressed) == (4, 1)
    assert delivery_key(broadcast.pk, org.member_b1.pk) not in calls(broadcast)
    row = Delivery.objects.get(broadcast=broadcast, member=org.member_b1)
    assert (row.status, row.reason) == ("suppressed", "opted_out")


def test_transient_errors_retry_and_refusals_are_kept(org: Org) -> None:
    broadcast = planned_broadcast(org)
    SandboxFault.objects.create(gateway="sms", member_id=org.member_b1.pk, kind="transient")
    SandboxFault.objects.create(gateway="sms", member_id=org.member_a2.pk, kind="not_friend")
    low, high = bounds(broadcast)
    first = send_chunk(broadcast_id=broadcast.pk, low=low, high=high)
    assert (first.sent, first.retry, first.suppressed) == (3, 1, 1)
    retry = Delivery.objects.get(broadcast=broadcast, member=org.member_b1)
    assert (retry.status, retry.attempts, retry.error) == ("planned", 1, "transient")
    # Not before its backoff: the row waits 5 s after its first failure.
    assert send_chunk(broadcast_id=broadcast.pk, low=low, high=high).sent == 0
    assert retry.next_attempt_at is not None
    # The sweeper leaves a row alone while it waits out its backoff, and keeps the
    # broadcast open for it.
    Delivery.objects.filter(pk=retry.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    assert broadcast_sweep(now=timezone.now() + timedelta(minutes=5)) == 0
    assert Broadcast.objects.get(pk=broadcast.pk).status == "sending"
    with transaction.atomic():  # dispatching hands the chunk over after commit
        assert broadcast_sweep(now=timezone.now() + timedelta(hours=2)) == 1
    later = timezone.now() + timedelta(hours=2)
    assert Broadcast.objects.get(pk=broadcast.pk).status == "sending"
    second = send_chunk(broadcast_id=broadcast.pk, low=low, high=high, now=later)
    assert second.sent == 1
    # The chunk that sent the last planned row closes the broadcast (no sweep needed).
    assert Broadcast.objects.get(pk=broadcast.pk).status == "done"
    assert calls(broadcast) == dict.fromkeys(
        expected_keys(broadcast) - {delivery_key(broadcast.pk, org.member_a2.pk)}, 1
    )


def test_a_rolled_back_transaction_sends_nothing(org: Org) -> None:
    import os

    from tests.conftest import clear_test_broker

    clear_test_broker()
    queue = Path(os.environ["SCRM_BROKER_DIR"]) / "queue"
    sandbox_before = SandboxCall.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        broadcast = planned_broadcast(org)
        assert broadcast_dispatch(broadcast_id=broadcast.pk) == 1
        raise RuntimeError("the request failed after planning")
    assert not Delivery.objects.exists() and not Broadcast.objects.exists()
    assert list(queue.iterdir()) == []  # the chunk task was never handed to the broker
    assert SandboxCall.objects.count() == sandbox_before
    assert broadcast_sweep(now=timezone.now() + timedelta(hours=1)) == 0


def test_killing_a_worker_mid_broadcast_loses_and_doubles_nothing(org: Org, tmp_path: Path) -> None:
    from tests.conftest import clear_test_broker

    clear_test_broker()
    broadcast = planned_broadcast(org, extra=245)  # 250 members, ~25 ms each
    worker = start_worker(tmp_path / "first.log", "send-1", SCRM_SANDBOX_LATENCY_MS="25")
    try:
        broadcast_dispatch(broadcast_id=broadcast.pk)  # outside a transaction: sent at once
        wait_for(lambda: len(calls(broadcast)) >= 40, timeout=60)
        stop_worker(worker, force=True)  # SIGKILL mid-chunk
        halfway = len(calls(broadcast))
        assert halfway < 250
        worker = start_worker(tmp_path / "second.log", "send-2")
        # The message was taken by the dead worker: the sweep hands the rest out again.
        assert broadcast_sweep(now=timezone.now() + timedelta(minutes=5)) >= 1
        wait_for(
            lambda: not Delivery.objects.filter(broadcast=broadcast, status="planned").exists(),
            timeout=90,
        )
    finally:
        stop_worker(worker)
    assert calls(broadcast) == dict.fromkeys(expected_keys(broadcast), 1)
    assert Delivery.objects.filter(broadcast=broadcast, status="sent").count() == 250


def test_cancelled_broadcasts_send_nothing(org: Org) -> None:
    broadcast = planned_broadcast(org)
    Broadcast.objects.filter(pk=broadcast.pk).update(status="cancelled")
    low, high = bounds(broadcast)
    assert send_chunk(broadcast_id=broadcast.pk, low=low, high=high).sent == 0
    assert calls(broadcast) == {}


def test_the_inbox_is_written_with_the_delivery(org: Org) -> None:
    broadcast = planned_broadcast(org, channel="inbox")
    low, high = bounds(broadcast)
    assert send_chunk(broadcast_id=broadcast.pk, low=low, high=high).sent == 5
    assert send_chunk(broadcast_id=broadcast.pk, low=low, high=high).sent == 0
    wang = org.member_of_guide_a1
    (message,) = InboxMessage.objects.filter(member=wang)
    assert (message.title, message.body) == ("会员日", f"{wang.name}，会员日快乐")
    assert InboxMessage.objects.count() == 5
    assert not SandboxCall.objects.filter(key__startswith=f"b{broadcast.pk}:").exists()
