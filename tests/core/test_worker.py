"""A task enqueued by the web process is run by a real Celery worker process."""

import pytest
from django.test import Client

from scrm.core.models import WorkerHeartbeat, WorkerPing
from scrm.core.tasks import record_worker_heartbeat
from tests.conftest import Org, wait_for

pytestmark = pytest.mark.worker


def test_ping_from_the_web_is_answered_by_the_worker(
    client: Client, org: Org, celery_worker
) -> None:
    client.force_login(org.hq_admin)
    response = client.post("/hq/system/ping/")
    assert response.status_code == 302
    ping = WorkerPing.objects.get()
    assert ping.requested_by == org.hq_admin

    def answered() -> WorkerPing | None:
        ping.refresh_from_db()
        return ping if ping.done_at else None

    wait_for(answered, timeout=60)
    assert ping.worker_hostname.startswith("test-worker-")
    assert ping.done_at is not None and ping.done_at >= ping.requested_at
    page = client.get("/hq/system/").content.decode()
    assert "已完成" in page


def test_heartbeat_task_runs_in_the_worker(celery_worker) -> None:
    record_worker_heartbeat.delay()
    beat = wait_for(lambda: WorkerHeartbeat.objects.first(), timeout=60)
    assert beat.hostname.startswith("test-worker-")


@pytest.mark.django_db
def test_ping_is_only_enqueued_after_commit(
    client: Client,
    org: Org,
    monkeypatch,
    django_capture_on_commit_callbacks,
) -> None:
    sent: list[int] = []
    from scrm.core import tasks

    monkeypatch.setattr(tasks.answer_worker_ping, "delay", lambda ping_id: sent.append(ping_id))
    client.force_login(org.hq_admin)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post("/hq/system/ping/")
    assert sent == []  # nothing reaches the broker while the transaction is open
    assert len(callbacks) == 1
    callbacks[0]()
    assert sent == [WorkerPing.objects.get().pk]


@pytest.mark.django_db
def test_answering_a_ping_twice_keeps_the_first_answer() -> None:
    from scrm.core.services import worker_ping_answer

    ping = WorkerPing.objects.create()
    assert worker_ping_answer(ping_id=ping.pk, hostname="first") is True
    assert worker_ping_answer(ping_id=ping.pk, hostname="second") is False
    ping.refresh_from_db()
    assert ping.worker_hostname == "first"
    assert worker_ping_answer(ping_id=ping.pk + 1000, hostname="ghost") is False
