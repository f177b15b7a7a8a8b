"""Health checks behind /healthz and `manage.py healthcheck`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.utils import timezone

from scrm.celery import app as celery_app


@dataclass
class Check:
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail}


def check_database(alias: str = "default") -> Check:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "down"; the detail says which
        return Check(False, f"{type(exc).__name__}: {exc}".strip()[:300])
    return Check(True, "PostgreSQL reachable")


def check_broker() -> Check:
    url = str(celery_app.conf.broker_url or "")
    try:
        if url.startswith("filesystem://"):
            options = celery_app.conf.broker_transport_options or {}
            folder = Path(options.get("data_folder_in", ""))
            if not folder.is_dir():
                return Check(False, f"broker folder {folder} is missing")
            probe = folder / ".healthz"
            probe.write_text("ok")
            probe.unlink()
            return Check(True, "filesystem broker writable")
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
            transport = conn.transport_cls
        return Check(True, f"{transport} broker reachable")
    except Exception as exc:  # any failure means "down"
        return Check(False, f"{type(exc).__name__}: {exc}".strip()[:300])


def worker_status() -> dict[str, object]:
    """When each worker last ran its heartbeat. Informational: a slow worker is not 'down'."""
    from scrm.core.models import WorkerHeartbeat

    try:
        beats = list(WorkerHeartbeat.objects.order_by("-seen_at")[:10])
    except Exception:
        return {"workers": []}
    now = timezone.now()
    return {
        "workers": [
            {"hostname": b.hostname, "seconds_since_seen": int((now - b.seen_at).total_seconds())}
            for b in beats
        ]
    }


def check_all() -> tuple[bool, dict[str, object]]:
    database = check_database()
    broker = check_broker()
    healthy = database.ok and broker.ok
    report: dict[str, object] = {
        "status": "ok" if healthy else "unavailable",
        "database": database.as_dict(),
        "broker": broker.as_dict(),
        "debug": settings.DEBUG,
    }
    if database.ok:
        report.update(worker_status())
    return healthy, report
