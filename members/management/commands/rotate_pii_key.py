"""`manage.py rotate_pii_key [--check]`: move every stored phone to the current key.

Run after deploying a new SCRM_PII_KEY with the old one in SCRM_PII_PREVIOUS_KEYS (README,
"Rotating the phone key"). Prints progress, then one JSON line: rows per table.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from members.services.key_rotation import BATCH, rotation_run
from scrm.core.pii import current_key_also_previous, previous_keys_configured


class Command(BaseCommand):
    help = (
        "Re-digest and re-seal every stored phone under SCRM_PII_KEY (rows still under a key "
        "in SCRM_PII_PREVIOUS_KEYS); --check only counts them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Count the rows still holding a previous key; change nothing.",
        )
        parser.add_argument("--batch-size", type=int, default=BATCH)

    def handle(self, *args: Any, **options: Any) -> None:
        if current_key_also_previous():
            raise CommandError(
                "SCRM_PII_KEY is also listed in SCRM_PII_PREVIOUS_KEYS: set the new key as "
                "SCRM_PII_KEY and list only the keys it replaces. Nothing was changed."
            )
        if not previous_keys_configured():
            raise CommandError(
                "SCRM_PII_PREVIOUS_KEYS is empty: there is no previous key to rotate from. Set "
                "the new key as SCRM_PII_KEY, move the old one to SCRM_PII_PREVIOUS_KEYS, "
                "deploy, then run this. Nothing was changed."
            )
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1. Nothing was changed.")
        check = options["check"]
        report = rotation_run(
            write=not check,
            batch_size=options["batch_size"],
            progress=lambda line: self.stdout.write(line),
            origin="command:rotate_pii_key",
        )
        for table, row_id in report.unreadable:
            self.stderr.write(
                f"{table} #{row_id}: its sealed phone opens with no configured key; skipped."
            )
        if +report.remaining and not check:
            self.stderr.write(
                "Rows still holding a previous key (a phone identity whose current digest "
                "another member holds, or a row changed during the run; run again or look at "
                f"them): {report.summary()['remaining']}."
            )
        if +report.unmatched:
            self.stderr.write(
                "Rows whose digest is no sealed number's under any key (a second phone linked "
                f"to a member): {report.summary()['unmatched']}. They cannot be re-keyed; a "
                "lookup finds them only while the key that made them is configured."
            )
        if report.clean:
            self.stdout.write(
                "No row holds a previous key's digest or seal: SCRM_PII_PREVIOUS_KEYS can be "
                "removed."
            )
        else:
            self.stdout.write(
                "Rows still hold a previous key or could not be read (see above): keep "
                "SCRM_PII_PREVIOUS_KEYS."
            )
        self.stdout.write(json.dumps({"mode": "check" if check else "rotate", **report.summary()}))
