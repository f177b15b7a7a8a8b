import socket

from celery import shared_task

from scrm.core import services


def _hostname(task) -> str:
    return str(getattr(task.request, "hostname", None) or socket.gethostname())


@shared_task(bind=True)
def answer_worker_ping(self, ping_id: int) -> None:
    services.worker_ping_answer(ping_id=ping_id, hostname=_hostname(self))


@shared_task(bind=True)
def record_worker_heartbeat(self) -> None:
    services.worker_heartbeat_record(hostname=_hostname(self))
