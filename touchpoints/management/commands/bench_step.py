"""One measured step of `bench import`, run in its own process against a scratch database.

Not for everyday use: `python manage.py bench import` drives it.
"""

from __future__ import annotations

import csv
import json
import resource
import time
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _python_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu() -> float | None:
    """CPU seconds used so far by this connection's database backend, when it runs on
    this machine (read from /proc); None otherwise."""
    import os

    host = connection.settings_dict.get("HOST") or ""
    if host and not host.startswith("/") and host not in ("localhost", "127.0.0.1", "::1"):
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    pid = row[0] if row else 0
    try:
        if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None  # a local port served from another process namespace
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Command(BaseCommand):
    help = "Internal: one step of `bench import` (migrate, preload, import, baselines)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("step")
        parser.add_argument("params", nargs="*")

    def handle(self, *args: Any, step: str, **options: Any) -> None:
        extra = options["params"]
        started = time.perf_counter()
        result: dict[str, Any] = {}
        if step == "migrate":
            call_command("migrate", verbosity=0)
        elif step == "preload":
            result = self._preload(int(extra[0]))
        elif step == "import":
            result = self._import(extra[0], Path(extra[1]))
        elif step == "import_export":
            result = self._import_export(Path(extra[0]), int(extra[1]))
        elif step == "copy":
            result = self._copy(Path(extra[0]))
        result.setdefault("seconds", round(time.perf_counter() - started, 3))
        result["peak_rss_mb"] = _peak_mb()
        self.stdout.write(json.dumps(result))

    def _preload(self, count: int) -> dict[str, Any]:
        """Put the first `count` people of the file in the pool already (by COPY)."""
        from django.utils import timezone

        from members.services.bulk import allocate_ids, phone_columns
        from touchpoints.bench import phone

        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            ids = allocate_ids(cursor, "members_member", count)
            columns = [phone_columns(f"+86{phone(n)}") for n in range(count)]
            with cursor.copy(
                "COPY members_member (id, name, phone_digest, phone_last4, phone_sealed, city, "
                "source_channel, created_at, updated_at) FROM STDIN"
            ) as copy:
                for member_id, kept in zip(ids, columns, strict=True):
                    copy.write_row((member_id, "", *kept, "", "pos", now, now))
            with cursor.copy(
                "COPY members_identity (member_id, kind, app, value, hint, source, created_at) "
                "FROM STDIN"
            ) as copy:
                for member_id, (digest, last4, _sealed) in zip(ids, columns, strict=True):
                    copy.write_row((member_id, "phone", "", digest, last4, "pos", now))
        return {"rows": count}

    def _import(self, kind: str, path: Path) -> dict[str, Any]:
        from django.core.files import File

        from touchpoints.imports.jobs import import_job_create, import_job_run

        started = time.perf_counter()
        with path.open("rb") as handle:
            upload = File(handle, name=path.name)
            upload.size = path.stat().st_size
            job = import_job_create(
                upload=upload, kind=kind, source="generic", actor=None, enqueue=False
            )
        python_cpu, database_cpu = _python_cpu(), _backend_cpu()
        job = import_job_run(job.pk, worker="bench") or job
        database_after = _backend_cpu()
        if database_cpu is not None and database_after is not None:
            database_cpu = database_after - database_cpu
        return {
            # Where the time went: this process (parser and writer threads) and the
            # database backend serving it (None when the database is on another host).
            "python_cpu_seconds": round(_python_cpu() - python_cpu, 2),
            "database_cpu_seconds": round(database_cpu, 2) if database_cpu is not None else None,
            "rows": job.rows_read,
            "seconds": round(time.perf_counter() - started, 3),
            "status": job.status,
            "created": job.created,
            "updated": job.updated,
            "merged": job.merged,
            "unchanged": job.unchanged,
            "rejected": job.rejected,
        }

    def _import_export(self, path: Path, sample: int) -> dict[str, Any]:
        """django-import-export's default ModelResource on the first `sample` rows."""
        import tablib
        from import_export.resources import modelresource_factory

        from members.models import Member
        from members.phones import try_normalize_phone
        from members.services.bulk import phone_columns

        data = tablib.Dataset(headers=["name", "phone_digest", "phone_last4", "city"])
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            for n, row in enumerate(reader):
                if n >= sample:
                    break
                digest, last4, _sealed = phone_columns(try_normalize_phone(row[0]) or "")
                data.append([row[1], digest, last4, row[4]])
        resource = modelresource_factory(model=Member)()
        started = time.perf_counter()
        result = resource.import_data(data, dry_run=False)
        return {
            "rows": sample,
            "seconds": round(time.perf_counter() - started, 3),
            "errors": len(result.row_errors()),
        }

    def _copy(self, path: Path) -> dict[str, Any]:
        """Raw COPY of the cleaned rows into the member table (rolled back): the file is
        cleaned first (phones normalised, digested and sealed, untimed), then written the
        way an import job writes new members, without a copy of each row in the audit
        trail. Only the COPY is timed."""
        from members.phones import try_normalize_phone
        from members.services.bulk import phone_columns
        from scrm.audit.services import creations_unrecorded

        now = "2026-01-01 00:00:00+08"
        rows = []
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                number = try_normalize_phone(row[0])
                if number:
                    rows.append((row[1], *phone_columns(number), row[4], "import", now, now))
        with transaction.atomic(), connection.cursor() as cursor:
            with creations_unrecorded(cursor):
                started = time.perf_counter()
                with cursor.copy(
                    "COPY members_member (name, phone_digest, phone_last4, phone_sealed, city, "
                    "source_channel, created_at, updated_at) FROM STDIN"
                ) as copy:
                    for cleaned in rows:
                        copy.write_row(cleaned)
                seconds = time.perf_counter() - started
            transaction.set_rollback(True)
        return {"rows": len(rows), "seconds": round(seconds, 3)}
