"""Demo data for the monitor dashboards: the aggregates built from the demo pool, orders
and ledger (after every other app's demo step), and today's distributions."""

from __future__ import annotations

from scrm.core.demo import DemoContext, demo_step


@demo_step(order=90)
def seed_dashboards(ctx: DemoContext) -> str:
    from analytics.models import PoolDay, SalesDay
    from analytics.services import aggregates_rebuild

    aggregates_rebuild()  # idempotent: builds from scratch, takes today's snapshot again
    return (
        f"dashboard aggregates rebuilt: {PoolDay.objects.count()} pool days, "
        f"{SalesDay.objects.count()} sales days"
    )
