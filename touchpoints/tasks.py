import socket

from celery import shared_task

from touchpoints.imports.jobs import import_job_run, stalled_jobs


@shared_task(bind=True)
def run_import_job(self, job_id: int) -> None:
    """Run or resume one import job. A second delivery finds the lease taken and returns."""
    hostname = str(getattr(self.request, "hostname", None) or socket.gethostname())
    import_job_run(job_id, worker=hostname)


@shared_task
def resume_stalled_imports() -> int:
    """Every minute: re-enqueue jobs whose worker died or whose message was lost."""
    job_ids = stalled_jobs()
    for job_id in job_ids:
        run_import_job.delay(job_id)
    return len(job_ids)


@shared_task
def apply_event_effects(event_ids: list[int]) -> int:
    """Apply one batch's effects after it committed (safe to run twice: claimed once)."""
    from touchpoints.services.events import events_apply

    return events_apply(ids=[int(i) for i in event_ids]).events


@shared_task
def apply_stale_events() -> int:
    """Every minute: effects of events whose task was lost."""
    from touchpoints.services.events import events_apply_stale

    return events_apply_stale()


@shared_task
def refresh_touchpoint_health(days: int = 2) -> int:
    """Every 15 minutes (today and yesterday); nightly the last 31 days, for conversion."""
    from touchpoints.services.health import health_refresh

    return health_refresh(days=days)


@shared_task
def check_touchpoint_alerts() -> int:
    """Nightly, after the refresh: alerts on yesterday's figures."""
    from touchpoints.services.health import alerts_check, health_refresh

    health_refresh(days=31)
    return len(alerts_check())


@shared_task
def invite_to_surveys() -> int:
    """Hourly: after-purchase survey invitations (once per order and survey)."""
    from touchpoints.services.feedback import surveys_invite_after_purchase

    return surveys_invite_after_purchase()
