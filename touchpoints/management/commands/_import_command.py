"""Shared by `import_members` and `import_orders`: the same job path the HQ page uses."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser

from scrm.core.tabular import ImportFileError
from touchpoints.imports.jobs import import_job_create, import_job_run
from touchpoints.models import ImportSource, ImportStatus


class ImportCommand(BaseCommand):
    kind = ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV (UTF-8 or GBK) or XLSX file")
        parser.add_argument(
            "--source",
            required=True,
            choices=ImportSource.values,
            help="whose export this is (picks the column mapping)",
        )

    def handle(self, *args: Any, file: str, source: str, **options: Any) -> None:
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        started = time.perf_counter()
        try:
            with path.open("rb") as handle:
                upload = File(handle, name=path.name)
                upload.size = path.stat().st_size
                job = import_job_create(
                    upload=upload, kind=self.kind, source=source, actor=None, enqueue=False
                )
        except ImportFileError as exc:
            self.stdout.write(
                json.dumps(
                    {"status": "refused", "code": exc.code, "message": exc.message},
                    ensure_ascii=False,
                )
            )
            raise CommandError(exc.message) from exc
        job = import_job_run(job.pk, worker="manage.py") or job
        summary = {
            "job": job.pk,
            "status": job.status,
            "rows": job.rows_read,
            "created": job.created,
            "updated": job.updated,
            "merged": job.merged,
            "unchanged": job.unchanged,
            "rejected": job.rejected,
            "to_review": job.to_review,
            "seconds": round(time.perf_counter() - started, 2),
        }
        if job.error:
            summary["error"] = job.error
        self.stdout.write(json.dumps(summary, ensure_ascii=False))
        if job.status != ImportStatus.DONE:
            raise CommandError(f"import {job.status}: {job.error}")
