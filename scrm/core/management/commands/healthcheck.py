import json
from typing import Any

from django.core.management.base import BaseCommand

from scrm.core.health import check_all


class Command(BaseCommand):
    help = "Print the /healthz report; exit 1 when the database or the broker is down."

    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        healthy, report = check_all()
        self.stdout.write(json.dumps(report, ensure_ascii=False))
        if not healthy:
            raise SystemExit(1)
