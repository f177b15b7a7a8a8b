import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from scrm.core.backup import BackupError, restore


class Command(BaseCommand):
    help = (
        "Restore FILE (made by db_backup) into a new database NAME; then point "
        "DATABASE_URL at it. Prints one JSON line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--into", required=True, help="the new database's name")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            restore(options["file"], options["into"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps({"file": str(options["file"]), "database": options["into"]}))
