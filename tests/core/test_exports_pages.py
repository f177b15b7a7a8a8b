"""/hq/system/ downloads every worker ping (the page shows the latest ten) without
checking the services first."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from scrm.core.models import WorkerPing
from tests.conftest import Org
from tests.downloads import table

SHANGHAI = ZoneInfo("Asia/Shanghai")
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_worker_pings_download_every_ping(
    client: Client, org: Org, file_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_checks() -> None:
        raise AssertionError("a download checks no service")

    monkeypatch.setattr("scrm.core.views.hq.check_all", no_checks)
    start = datetime(2026, 3, 1, 9, 0, tzinfo=SHANGHAI)
    for n in range(11):
        ping = WorkerPing.objects.create()
        WorkerPing.objects.filter(pk=ping.pk).update(requested_at=start + timedelta(minutes=n))
    done = WorkerPing.objects.create(
        requested_by=org.hq_admin,
        done_at=start + timedelta(hours=1, seconds=1.5),
        worker_hostname="celery@w1",
    )
    WorkerPing.objects.filter(pk=done.pk).update(requested_at=start + timedelta(hours=1))
    client.force_login(org.hq_operator)
    rows = table(client.get("/hq/system/", {"format": file_format}))
    assert rows[0] == ["#", "发起时间", "发起人", "状态", "后台进程"]
    assert len(rows) == 1 + 12  # past the 10 the page shows
    assert rows[1] == [
        str(done.pk),
        "2026-03-01 10:00",
        str(org.hq_admin),
        "已完成，用时 1.50 秒",
        "celery@w1",
    ]
    assert rows[2][3:] == ["等待后台进程", ""]
