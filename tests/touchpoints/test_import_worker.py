"""Imports in real Celery worker processes, including one killed in the middle of a job."""

import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from members.models import Identity, Member
from tests.conftest import Org, clear_test_broker, start_worker, stop_worker, wait_for
from tests.touchpoints.files import csv_bytes, upload
from touchpoints.imports.jobs import import_job_create
from touchpoints.models import ImportEvent, ImportJob, ImportRowError, ImportStatus
from touchpoints.tasks import resume_stalled_imports

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROWS = 30_000
BAD_EVERY = 997


def big_member_file() -> tuple[bytes, int]:
    rows: list[list[str]] = [["手机号", "姓名", "会员卡号"]]
    bad = 0
    for n in range(ROWS):
        if n % BAD_EVERY == 0:
            rows.append([f"12{n:09d}", f"坏{n}", f"C{n}"])  # 12… is not a mobile number
            bad += 1
        else:
            rows.append([f"139{n:08d}", f"会员{n}", f"C{n}"])
    return csv_bytes(rows), bad


def test_upload_from_the_web_is_imported_by_the_worker(
    client: Client, org: Org, celery_worker: Any
) -> None:
    client.force_login(org.hq_operator)
    content = csv_bytes([["手机号", "姓名"], ["13812345678", "网页上传"], ["bad", "坏"]])
    response = client.post(
        "/hq/imports/", {"kind": "members", "source": "generic", "file": upload("web.csv", content)}
    )
    job = ImportJob.objects.get()
    assert response["Location"] == f"/hq/imports/{job.pk}/"
    wait_for(lambda: ImportJob.objects.get(pk=job.pk).is_finished, timeout=60)
    job.refresh_from_db()
    assert (job.status, job.created, job.rejected) == (ImportStatus.DONE, 1, 1)
    assert job.worker.startswith("test-worker-")


def test_a_worker_killed_mid_job_is_resumed_without_duplicates_or_lost_rows(
    tmp_path: Path, settings: Any
) -> None:
    clear_test_broker()
    content, bad = big_member_file()
    env = {"IMPORT_CHUNK_ROWS": "1000", "IMPORT_LEASE_SECONDS": "3"}
    settings.IMPORT_LEASE_SECONDS = 3
    first = start_worker(tmp_path / "first.log", "doomed", **env)
    try:
        job = import_job_create(
            upload=upload("big.csv", content), kind="members", source="generic", actor=None
        )
        wait_for(lambda: ImportJob.objects.get(pk=job.pk).rows_done > 0, timeout=60, interval=0.02)
    finally:
        stop_worker(first, force=True)  # SIGKILL: no chance to finish the chunk or clean up
    job.refresh_from_db()
    assert job.status == ImportStatus.RUNNING
    assert 0 < job.rows_done < ROWS + 1, "the worker must die mid-job for this test"
    killed_at = job.rows_done
    second = start_worker(tmp_path / "second.log", "rescuer", **env)
    try:
        time.sleep(3.5)  # let the dead worker's lease expire
        assert resume_stalled_imports() == 1
        wait_for(lambda: ImportJob.objects.get(pk=job.pk).is_finished, timeout=120)
    finally:
        stop_worker(second)
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert job.rows_done == ROWS + 1
    assert (job.created, job.rejected, job.unchanged, job.merged) == (ROWS - bad, bad, 0, 0)
    assert Member.objects.count() == ROWS - bad
    assert Identity.objects.filter(kind="phone").count() == ROWS - bad
    assert Identity.objects.filter(kind="pos_card").count() == ROWS - bad
    assert ImportRowError.objects.filter(job=job).count() == bad
    assert ImportRowError.objects.filter(job=job).values("row_number").distinct().count() == bad
    assert job.worker.startswith("rescuer-")
    events = list(ImportEvent.objects.filter(job=job).values_list("message", flat=True))
    assert any("Resumed" in m or "恢复" in m or str(killed_at + 1) in m for m in events), events


def test_cancelling_a_running_job_stops_it_and_keeps_what_was_saved(
    tmp_path: Path, org: Org
) -> None:
    from touchpoints.imports.jobs import import_job_cancel

    clear_test_broker()
    content, _bad = big_member_file()
    before = Member.objects.count()
    worker = start_worker(tmp_path / "w.log", "canceller", IMPORT_CHUNK_ROWS="500")
    try:
        job = import_job_create(
            upload=upload("big.csv", content), kind="members", source="generic", actor=None
        )
        wait_for(lambda: ImportJob.objects.get(pk=job.pk).rows_done > 0, timeout=60, interval=0.02)
        import_job_cancel(job=job, actor=org.hq_admin)
        wait_for(lambda: ImportJob.objects.get(pk=job.pk).is_finished, timeout=60)
    finally:
        stop_worker(worker)
    job.refresh_from_db()
    assert job.status == ImportStatus.CANCELLED
    assert 0 < job.rows_done < ROWS + 1
    # What was saved is exactly what the counters say, up to the row the job reached.
    assert Member.objects.count() - before == job.created
    assert ImportRowError.objects.filter(job=job).count() == job.rejected
    messages = list(ImportEvent.objects.filter(job=job).values_list("message", flat=True))
    assert any("取消" in m for m in messages), messages
