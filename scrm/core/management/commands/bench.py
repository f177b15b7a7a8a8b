import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from scrm.core.bench import BENCHES


class Command(BaseCommand):
    help = "Run a benchmark and print one JSON line: its figures, a baseline, and the ratio."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="bench name; omit with --list")
        parser.add_argument("--size", type=int, help="problem size (default: the bench's own)")
        parser.add_argument("--ci", action="store_true", help="run at the small CI size")
        parser.add_argument("--list", action="store_true", help="list the benches")

    def handle(
        self, *args: Any, name: str | None, size: int | None, ci: bool, list: bool, **options: Any
    ) -> None:
        if list or not name:
            for bench in sorted(BENCHES.values(), key=lambda b: b.name):
                self.stdout.write(
                    f"{bench.name}\tdefault size {bench.default_size}\t{bench.description}"
                )
            return
        if name not in BENCHES:
            raise CommandError(f"unknown bench {name!r}; known: {', '.join(sorted(BENCHES))}")
        bench = BENCHES[name]
        size = size if size is not None else (bench.ci_size if ci else bench.default_size)
        if size < 1:
            raise CommandError("--size must be at least 1")
        result = bench.run(size)
        line = {
            "bench": name,
            "size": size,
            "figures": result.figures,
            "baseline": result.baseline,
            "ratio": round(result.ratio, 3),
            "ratio_means": result.ratio_means,
            **result.extra,
            "measured_at": timezone.now().isoformat(timespec="seconds"),
        }
        self.stdout.write(json.dumps(line, ensure_ascii=False))
