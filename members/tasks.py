from celery import shared_task

from members.services.lifecycle import lifecycle_refresh_all


@shared_task
def refresh_lifecycle_stages() -> int:
    """Nightly: sleeping and churned depend on the date, not only on new data."""
    return lifecycle_refresh_all()
