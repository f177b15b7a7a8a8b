"""Import jobs: upload → inspect → run in chunks (Celery) → done, cancelled or failed.

The database decides what was imported: each chunk commits its rows together with the
job's counters and `rows_done`. A worker that dies mid-chunk loses only that chunk's
uncommitted transaction; the job's lease expires, `resume_stalled_imports` enqueues it
again, and it continues after `rows_done`. A second worker can never run the same job
at the same time: it must take the lease first.

Speed (`manage.py bench import`): a parser thread turns rows into parsed items one chunk
ahead, COPY text included where the row alone decides it; the writer (this thread) is the
critical path: over a 200k-row file it waits for the parser well under a second in all.
Per 200k rows (PostgreSQL 15 on 2 cores, 2026-12-07) a member file takes ~14.5 s: the
writer's Python ~4 s, PostgreSQL ~10 s (COPY of members and identities, identity lookups,
the deferred foreign-key checks at commit ~2.6 s, known members filled in with their audit
rows, lifecycle stages). An order file takes ~19 s: the recount of each buyer's figures
~3.9 s, foreign-key checks at commit ~3.3 s (order to member, line to order), COPY of
orders and lines, buyer lookups. A job runs with a relaxed cycle collector (see `_run`).

Tried and measured (200k-row files, 2 cores, before the collector change): parsing in a
forked process instead of a thread, chunks sent back pickled, was no faster (members
15.9-16.7 s in a thread, 17.1-18.6 s forked; orders alike) and held ~390 MB between the
two processes: parser, writer and PostgreSQL already kept both cores busy, and rebuilding
a pickled chunk cost what the interpreter lock did.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.core.tabular import (
    FileInfo,
    ImportFileError,
    inspect_file,
    iter_rows,
    reopen,
)
from touchpoints.imports import mappings
from touchpoints.imports.members_import import (
    Counts,
    MemberRowParser,
    import_member_chunk,
    lookups_for_import,
    required_member_columns,
)
from touchpoints.models import (
    ImportEvent,
    ImportJob,
    ImportKind,
    ImportMapping,
    ImportRowError,
    ImportSource,
    ImportStatus,
)

log = logging.getLogger(__name__)


def chunk_rows() -> int:
    return int(getattr(settings, "IMPORT_CHUNK_ROWS", 20_000))


def lease() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "IMPORT_LEASE_SECONDS", 120)))


def mapping_for(kind: str, source: str) -> dict[str, list[str]]:
    row = ImportMapping.objects.filter(kind=kind, source=source).first()
    return row.columns if row is not None else mappings.defaults(kind, source)


def check_columns(kind: str, source: str, info: FileInfo) -> dict[str, int]:
    """Match the file's headers; raise ImportFileError naming the missing columns."""
    mapping = mapping_for(kind, source)
    columns = mappings.match_columns(info.headers, mapping)
    if kind == ImportKind.MEMBERS:
        missing = required_member_columns(columns)
    else:
        from touchpoints.imports.orders_import import required_order_columns

        missing = required_order_columns(columns, source)
    if missing:
        names = "、".join(mapping.get(field, [field])[0] for field in missing)
        raise ImportFileError(
            "file_missing_columns",
            _("Required columns are missing: %(columns)s. The file's columns are: %(found)s.")
            % {"columns": names, "found": "、".join(h for h in info.headers if h)[:300]},
        )
    return columns


def max_bytes() -> int:
    return int(getattr(settings, "IMPORT_MAX_BYTES", 200 * 1024 * 1024))


def import_job_create(
    *,
    upload: UploadedFile | File,
    kind: str,
    source: str,
    actor: Any,
    store: Any = None,
    enqueue: bool = True,
) -> ImportJob:
    """Store the upload, check the whole file, and queue the job. A bad file raises
    ImportFileError and leaves nothing behind (no job, no stored file)."""
    if kind not in ImportKind.values:
        raise ImportFileError("kind_invalid", _("Choose members or orders."))
    if source not in ImportSource.values:
        raise ImportFileError(
            "source_invalid", _("Unknown source “%(source)s”.") % {"source": source}
        )
    if upload.size is not None and upload.size > max_bytes():
        raise ImportFileError(
            "file_too_large",
            _("The file is %(size)s MB; the limit is %(limit)s MB. Split it and import the parts.")
            % {"size": f"{upload.size / 1e6:.0f}", "limit": f"{max_bytes() / 1e6:.0f}"},
        )
    job = ImportJob(
        kind=kind,
        source=source,
        original_name=(upload.name or "upload")[:255],
        size_bytes=upload.size or 0,
        created_by=actor if getattr(actor, "pk", None) else None,
        store=store,
    )
    job.file.save(os.path.basename(upload.name or "upload.csv"), upload, save=False)
    path = Path(job.file.path)
    try:
        info = inspect_file(path, name=job.original_name, max_bytes=max_bytes())
        check_columns(kind, source, info)
    except BaseException:
        job.file.delete(save=False)  # a refused file leaves nothing behind
        raise
    job.encoding = info.encoding
    job.rows_total = info.rows_estimate
    with transaction.atomic():
        job.save()
        ImportEvent.objects.create(
            job=job,
            message=_("Uploaded %(name)s (%(rows)s rows).")
            % {"name": job.original_name, "rows": job.rows_total},
        )
        if enqueue:
            from touchpoints.tasks import run_import_job

            transaction.on_commit(lambda: run_import_job.delay(job.pk))
    return job


def import_job_cancel(*, job: ImportJob, actor: Any) -> ImportJob:
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            return job
        job.cancel_requested = True
        fields = ["cancel_requested"]
        if job.status == ImportStatus.QUEUED:
            job.status = ImportStatus.CANCELLED
            job.finished_at = timezone.now()
            fields += ["status", "finished_at"]
            ImportEvent.objects.create(job=job, message=_("Cancelled before it started."))
        else:
            ImportEvent.objects.create(
                job=job,
                message=_("Cancel requested by %(who)s; stopping after the current chunk.")
                % {"who": actor},
            )
        job.save(update_fields=fields)
    return job


def _claim(job_id: int, worker: str) -> ImportJob | None:
    """Take the job's lease; None when another worker holds it or it is finished."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(
        Q(pk=job_id),
        Q(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]),
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
    ).update(lease_until=now + lease(), worker=worker[:200], attempts=F("attempts") + 1)
    if not claimed:
        return None
    job = ImportJob.objects.get(pk=job_id)
    if job.status == ImportStatus.RUNNING:
        ImportEvent.objects.create(
            job=job,
            message=_(
                "Resumed by %(worker)s after the previous worker stopped; continuing after row "
                "%(row)s. Rows before it were already saved and are not imported twice."
            )
            % {"worker": worker, "row": job.rows_done + 1 if job.rows_done else 1},
        )
    else:
        job.status = ImportStatus.RUNNING
        job.started_at = now
        job.save(update_fields=["status", "started_at"])
        ImportEvent.objects.create(
            job=job, message=_("Started by %(worker)s.") % {"worker": worker}
        )
    return job


def import_job_run(job_id: int, *, worker: str | None = None) -> ImportJob | None:
    """Run (or resume) a job to the end. Safe to call twice: the lease admits one runner."""
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    job = _claim(job_id, worker)
    if job is None:
        return None
    try:
        _run(job, worker)
    except Exception as exc:
        log.exception("import job %s failed", job_id)
        ImportJob.objects.filter(pk=job_id).update(
            status=ImportStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
            lease_until=None,
        )
        ImportEvent.objects.create(
            job_id=job_id,
            message=_(
                "Failed: %(error)s. Rows saved before the failing chunk stay imported; fix the "
                "cause and import the file again (saved rows are not duplicated)."
            )
            % {"error": str(exc)[:150]},
        )
    return ImportJob.objects.get(pk=job_id)


IMPORT_GC_THRESHOLD = 100_000


def _run(job: ImportJob, worker: str) -> None:
    path = Path(job.file.path)
    info = reopen(path, encoding=job.encoding)
    columns = check_columns(job.kind, job.source, info)
    lookups = lookups_for_import()
    if job.kind == ImportKind.MEMBERS:
        parser: Any = MemberRowParser(
            source=job.source, columns=columns, headers=info.headers, lookups=lookups
        )
        apply_chunk: Any = import_member_chunk
    else:
        from touchpoints.imports.orders_import import OrderRowParser, import_order_chunk

        parser = OrderRowParser(
            source=job.source, columns=columns, headers=info.headers, lookups=lookups
        )
        apply_chunk = import_order_chunk
    parser.safe_row = job.rows_done
    rows = iter_rows(path, info, start_after=job.rows_done)
    stop = threading.Event()
    # Queries first: the settings changed below are given back only from `try` on.
    statistics = StatisticsCadence(job.kind)
    # Parsing the next chunk (Python) overlaps writing this one (PostgreSQL). The writer
    # gives up the interpreter lock at every database call and must win it back from
    # the parser: a 1 ms switch interval instead of 5 ms cuts that wait (measured:
    # order imports 20 s -> 17 s per 200k rows).
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, 0.001))
    # A chunk holds tens of thousands of parsed rows alive at once, so with the default
    # thresholds the cycle collector kept running full passes over every object in the
    # process: 40% of a member import's Python time. The rows form no reference cycles;
    # a collection every 100,000 allocations keeps the collector for what does (measured
    # per 200k rows: members 24 s -> 14-15 s, orders 26 s -> 19-20 s; peak memory of a
    # million-row file 300-317 MB).
    collector_thresholds = gc.get_threshold()
    gc.set_threshold(IMPORT_GC_THRESHOLD, *collector_thresholds[1:])
    chunks = prefetched(_chunks(parser, rows, chunk_rows()), stop)
    try:
        for parsed, counts, safe_row, exhausted in chunks:
            if safe_row == job.rows_done and not parsed and not counts.rejected:
                break
            if not _commit_chunk(job, parsed, counts, safe_row, apply_chunk, worker):
                return
            statistics.check()
            job.refresh_from_db()
            if exhausted:
                break
    finally:
        stop.set()
        sys.setswitchinterval(switch_interval)
        gc.set_threshold(*collector_thresholds)
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        job.status = ImportStatus.DONE
        job.finished_at = timezone.now()
        job.lease_until = None
        job.save(update_fields=["status", "finished_at", "lease_until"])
        if job.kind == ImportKind.ORDERS:
            from members.tasks import recount_rfm, sweep_purchase_growth

            # Growth value and RFM facts for the new orders, set-based, in the background.
            transaction.on_commit(sweep_purchase_growth.delay)
            transaction.on_commit(recount_rfm.delay)
        from members.tasks import apply_auto_tag_rules

        # New members and orders can match auto-tag rules.
        transaction.on_commit(apply_auto_tag_rules.delay)
        ImportEvent.objects.create(
            job=job,
            message=_(
                "Done: %(created)s created, %(updated)s updated, %(merged)s merged, "
                "%(unchanged)s unchanged, %(rejected)s rejected, %(review)s sent to review."
            )
            % {
                "created": job.created,
                "updated": job.updated,
                "merged": job.merged,
                "unchanged": job.unchanged,
                "rejected": job.rejected,
                "review": job.to_review,
            },
        )


WRITTEN_TABLES: dict[str, tuple[str, ...]] = {
    ImportKind.MEMBERS: ("members_member", "members_identity"),
    ImportKind.ORDERS: ("members_order", "members_orderline", "members_member", "members_identity"),
}


class StatisticsCadence:
    """A large import can grow the pool several times over before autovacuum looks at it,
    and the planner would work from statistics of a much smaller table. Each table a job
    writes is sampled again when it has doubled in size since the job started or since its
    last sample (the planner also scales row counts by a table's current size): a few
    times per large file, never for small ones, and only the tables that grew. An order
    file grows the order tables, the member tables only as far as its new buyers do.
    (Sampling all four every fifth chunk took 1.8 s of a 200k-row order import.)"""

    GROWTH = 2.0
    MINIMUM_BYTES = 4 * 1024 * 1024

    def __init__(self, kind: str) -> None:
        self.tables = WRITTEN_TABLES[kind]
        self.sampled_at = self._sizes()
        self.passes = 0

    def _sizes(self) -> dict[str, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT t, pg_relation_size(t::regclass) FROM unnest(%s::text[]) AS t",
                [list(self.tables)],
            )
            return dict(cursor.fetchall())

    def check(self) -> list[str]:
        """After each chunk: sample the tables that doubled; returns their names."""
        sizes = self._sizes()
        grown = [
            table
            for table in self.tables
            if sizes[table] >= max(self.sampled_at[table] * self.GROWTH, self.MINIMUM_BYTES)
        ]
        if grown:
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {', '.join(grown)}")
            self.sampled_at.update({table: sizes[table] for table in grown})
            self.passes += 1
        return grown


def _chunks(
    parser: Any, rows: Iterator[tuple[int, list[str]]], size: int
) -> Iterator[tuple[list[Any], Counts, int, bool]]:
    """(parsed items, counts, last safe row, end of file) per chunk of `size` rows."""
    while True:
        counts = Counts()
        parsed: list[Any] = []
        exhausted = True
        for number, cells in rows:
            parser.feed(number, cells, counts, parsed)
            if len(parsed) + counts.rejected >= size:
                exhausted = False
                break
        if exhausted:
            parser.flush(counts, parsed)
        yield parsed, counts, parser.safe_row, exhausted
        if exhausted:
            return


def prefetched(source: Iterator[Any], stop: threading.Event) -> Iterator[Any]:
    """Run `source` one item ahead in a thread. Exceptions re-raise in the consumer;
    setting `stop` lets the producer thread end when the consumer gives up early."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        items.put(("item", item), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(("end", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            items.put(("error", exc))

    threading.Thread(target=produce, name="import-parser", daemon=True).start()
    while True:
        kind, value = items.get()
        if kind == "end":
            return
        if kind == "error":
            raise value
        yield value


def _commit_chunk(
    job: ImportJob, parsed: list[Any], counts: Counts, last_row: int, apply_chunk: Any, worker: str
) -> bool:
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(pk=job.pk)
        if locked.cancel_requested:
            locked.status = ImportStatus.CANCELLED
            locked.finished_at = timezone.now()
            locked.lease_until = None
            locked.save(update_fields=["status", "finished_at", "lease_until"])
            ImportEvent.objects.create(
                job=locked,
                message=_("Cancelled after row %(row)s; rows up to it stay imported.")
                % {"row": locked.rows_done},
            )
            return False
        if locked.worker != worker or locked.rows_done != job.rows_done:
            return False  # another worker took over: leave the job to it
        # The chunk and its checkpoint commit together, so an unflushed commit lost in a
        # database crash loses both and the job redoes that chunk: no need to wait for the
        # WAL flush on every chunk.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            # A chunk's statements are many short index lookups and writes; where the server
            # has JIT, their row estimates (temporary tables, arrays) made it compile them,
            # costing more than running them (measured: orders 14.2 s -> 11.9 s per 100k rows).
            cursor.execute("SET LOCAL jit TO OFF")
        # The members and identities a chunk creates are on record through the job; the
        # audit trail keeps what it changes or deletes, and every other row it creates.
        apply_chunk(parsed, source=job.source, counts=counts, record_creations=False)
        if counts.errors:
            ImportRowError.objects.bulk_create(
                [
                    ImportRowError(
                        job_id=job.pk, row_number=row, column=column, value=value, reason=reason
                    )
                    for row, column, value, reason in counts.errors
                ]
            )
        ImportJob.objects.filter(pk=job.pk).update(
            rows_done=last_row,
            created=F("created") + counts.created,
            updated=F("updated") + counts.updated,
            merged=F("merged") + counts.merged,
            unchanged=F("unchanged") + counts.unchanged,
            rejected=F("rejected") + counts.rejected,
            to_review=F("to_review") + counts.to_review,
            lease_until=timezone.now() + lease(),
        )
    return True


def stalled_jobs() -> list[int]:
    """Jobs whose worker vanished (lease expired) or whose queue message was lost."""
    now = timezone.now()
    return list(
        ImportJob.objects.filter(
            Q(status=ImportStatus.RUNNING, lease_until__lt=now)
            | Q(
                status=ImportStatus.QUEUED,
                lease_until__isnull=True,
                created_at__lt=now - timedelta(minutes=2),
            )
        ).values_list("pk", flat=True)
    )
