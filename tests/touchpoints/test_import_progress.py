"""The import page's progress line counts data rows: `rows_done` is a spreadsheet row
number (the header is row 1), `rows_total` counts data rows only."""

import re

import pytest
from django.test import Client

from tests.conftest import Org
from tests.touchpoints.files import TMALL_MEMBERS, csv_bytes
from tests.touchpoints.test_imports import run
from touchpoints.models import ImportJob, ImportStatus


def _progress_line(client: Client, job: ImportJob) -> str:
    html = client.get(f"/hq/imports/{job.pk}/").content.decode()
    match = re.search(r"(\d+)% · ([\d,]+) / ([\d,]+) 行", html)
    assert match is not None, html
    return match.group(0)


def test_a_finished_import_shows_every_data_row_read_once(client: Client, org: Org) -> None:
    job = run("tmall.csv", csv_bytes(TMALL_MEMBERS), "members", "tmall")
    data_rows = len(TMALL_MEMBERS) - 1  # the first line is the header
    assert (job.status, job.rows_total, job.rows_done) == (
        ImportStatus.DONE,
        data_rows,
        data_rows + 1,
    )
    assert job.rows_read == data_rows
    client.force_login(org.hq_operator)
    assert _progress_line(client, job) == f"100% · {data_rows} / {data_rows} 行"


@pytest.mark.parametrize(
    ("rows_done", "expected"),
    [(0, "0% · 0 / 200 行"), (1, "0% · 0 / 200 行"), (101, "50% · 100 / 200 行")],
)
def test_a_running_import_counts_data_rows_not_the_header(
    client: Client, org: Org, rows_done: int, expected: str
) -> None:
    job = ImportJob.objects.create(
        kind="members",
        source="tmall",
        file="imports/big.csv",
        original_name="big.csv",
        status=ImportStatus.RUNNING,
        rows_total=200,
        rows_done=rows_done,
        created_by=org.hq_operator,
    )
    client.force_login(org.hq_operator)
    assert _progress_line(client, job) == expected
