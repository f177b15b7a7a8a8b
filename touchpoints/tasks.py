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
