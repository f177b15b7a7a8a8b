"""Beat keeps the aggregates current; each task is safe to run twice (a second run finds
nothing new to read, or takes the same snapshot again)."""

from celery import shared_task


@shared_task
def refresh_aggregates() -> list[str]:
    """Every 10 minutes: add what was recorded since the last run."""
    from analytics.services import aggregates_refresh

    return aggregates_refresh()


@shared_task
def take_snapshots() -> None:
    """Hourly: today's distributions (the day's last taking stays as its record)."""
    from analytics.services import snapshots_take

    snapshots_take()
