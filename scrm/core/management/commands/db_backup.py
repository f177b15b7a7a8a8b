import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scrm.core.backup import BackupError, backup


class Command(BaseCommand):
    help = "Back the database up to FILE (pg_dump, custom format); prints one JSON line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if path.exists():
            raise CommandError(f"{path} exists already: choose a new file name.")
        try:
            size = backup(path)
        except BackupError as exc:
            path.unlink(missing_ok=True)
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps({"file": str(path), "bytes": size}))
