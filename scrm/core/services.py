from typing import Any

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from scrm.core.models import AuditEvent, WorkerHeartbeat, WorkerPing


@transaction.atomic
def worker_ping_request(*, actor) -> WorkerPing:
    """Record a ping and enqueue it for a worker once the row is committed."""
    from scrm.core.tasks import answer_worker_ping

    ping = WorkerPing.objects.create(requested_by=actor)
    transaction.on_commit(lambda: answer_worker_ping.delay(ping.pk))
    return ping


def worker_ping_answer(*, ping_id: int, hostname: str) -> bool:
    """Mark a ping answered. Safe to run twice: only the first answer is kept."""
    updated = WorkerPing.objects.filter(Q(pk=ping_id) & Q(done_at__isnull=True)).update(
        done_at=timezone.now(), worker_hostname=hostname[:200]
    )
    return updated == 1


def worker_heartbeat_record(*, hostname: str) -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname[:200], defaults={"seen_at": timezone.now()}
    )


def audit_record(
    *, actor: Any, action: str, target: models.Model, data: dict[str, Any] | None = None
) -> AuditEvent:
    """Append an audit event. Called inside the caller's transaction so both commit together."""
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        data=data or {},
    )


def notifications_mark_read(*, recipient: Any) -> int:
    from scrm.core.models import Notification

    return Notification.objects.filter(recipient=recipient, read_at__isnull=True).update(
        read_at=timezone.now()
    )
