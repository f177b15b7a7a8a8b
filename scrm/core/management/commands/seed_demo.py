import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scrm.core.demo import DEMO_STEPS, DemoContext


class Command(BaseCommand):
    help = (
        "Load realistic Chinese demo data (3 regions, 12 stores, 40 guides, members). "
        "Idempotent: running it again adds nothing that is already there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--members",
            type=int,
            default=5000,
            help="members in the pool after seeding (default 5000)",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing when the database already has stores",
        )

    def handle(self, *args: Any, members: int, if_empty: bool, **options: Any) -> None:
        if members < 0 or members > 20_000_000:
            raise CommandError("--members must be between 0 and 20,000,000")
        if if_empty:
            from scrm.org.models import Store

            if Store.objects.exists():
                self.stdout.write("Demo data not loaded: the database already has data.")
                return
        ctx = DemoContext(members=members)
        for step in DEMO_STEPS:
            started = time.perf_counter()
            summary = step.run(ctx)
            self.stdout.write(f"{step.name}: {summary} ({time.perf_counter() - started:.1f}s)")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
