"""`manage.py analytics_rebuild`: every dashboard aggregate built again from the raw tables."""

from typing import Any

from django.core.management.base import BaseCommand

from analytics.services import aggregates_rebuild, cursor_positions


class Command(BaseCommand):
    help = "Rebuild the dashboards' daily aggregates from members, orders and the ledger."

    def handle(self, *args: Any, **options: Any) -> None:
        aggregates_rebuild()
        for name, until in sorted(cursor_positions().items()):
            self.stdout.write(f"{name}: read until {until.isoformat()}")
