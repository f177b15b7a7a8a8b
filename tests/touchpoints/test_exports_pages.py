"""Touchpoint tables download as CSV and XLSX: the page's filters, the viewer's scope,
every matching row."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import Org
from tests.downloads import table
from touchpoints.models import Channel, ImportJob, ImportRowError, Touchpoint, TouchpointDay

pytestmark = pytest.mark.django_db
FORMATS = ("csv", "xlsx")


@pytest.fixture
def places(org: Org) -> dict[str, Touchpoint]:
    channel = Channel.objects.create(kind="wecom", name="企业微信", code="wecom")
    return {
        "a1": Touchpoint.objects.create(
            channel=channel, kind="qr_code", name="上海活码", code="qr-a1", store=org.a1
        ),
        "a1_off": Touchpoint.objects.create(
            channel=channel,
            kind="qr_code",
            name="上海旧码",
            code="qr-a1-old",
            store=org.a1,
            active=False,
        ),
        "b1": Touchpoint.objects.create(
            channel=channel, kind="qr_code", name="北京活码", code="qr-b1", store=org.b1
        ),
    }


@pytest.mark.parametrize("file_format", FORMATS)
def test_touchpoint_list_downloads_scoped_and_searched(
    client: Client, org: Org, places: dict[str, Touchpoint], file_format: str
) -> None:
    TouchpointDay.objects.create(touchpoint=places["a1"], day=timezone.localdate(), new_contacts=8)
    client.force_login(org.store_manager_a1)
    rows = table(client.get("/hq/touchpoints/", {"format": file_format}))
    assert rows[0] == ["触点", "编码", "类型", "渠道", "门店", "近 7 天新增接触", "状态"]
    assert sorted(rows[1:]) == [
        ["上海旧码", "qr-a1-old", "渠道活码", "企业微信", "上海南京西路店", "0", "已停用"],
        ["上海活码", "qr-a1", "渠道活码", "企业微信", "上海南京西路店", "8", "启用"],
    ]
    client.force_login(org.hq_operator)
    rows = table(client.get("/hq/touchpoints/", {"q": "北京", "format": file_format}))
    assert [r[1] for r in rows[1:]] == ["qr-b1"]


@pytest.mark.parametrize("file_format", FORMATS)
def test_health_downloads_scoped_and_filtered(
    client: Client, org: Org, places: dict[str, Touchpoint], file_format: str
) -> None:
    today = timezone.localdate()
    TouchpointDay.objects.create(
        touchpoint=places["a1"], day=today, new_contacts=8, new_members=3, first_purchases=2
    )
    TouchpointDay.objects.create(touchpoint=places["b1"], day=today, new_contacts=5)
    client.force_login(org.store_manager_a1)
    rows = table(client.get("/hq/touchpoints/health/", {"format": file_format}))
    assert rows[1:] == [
        ["上海活码", "企业微信", "上海南京西路店", "8", "3", "2", "0.250", "0", "0", "0"]
    ]
    client.force_login(org.hq_operator)
    rows = table(client.get("/hq/touchpoints/health/", {"store": org.b1.pk, "format": file_format}))
    assert [r[0] for r in rows[1:]] == ["北京活码"]


def _job(org: Org, name: str, **fields: object) -> ImportJob:
    return ImportJob.objects.create(
        kind="members",
        source="tmall",
        file=f"imports/{name}",
        original_name=name,
        created_by=org.hq_operator,
        **fields,
    )


@pytest.mark.parametrize("file_format", FORMATS)
def test_import_jobs_and_their_errors_download(client: Client, org: Org, file_format: str) -> None:
    job = _job(org, "tmall.csv", status="done", rows_total=4, rows_done=4, rejected=2)
    ImportRowError.objects.create(
        job=job, row_number=5, column="手机号", value="1381234", reason="手机号不对"
    )
    ImportRowError.objects.create(job=job, row_number=6, column="姓名", value="=1+1", reason="公式")
    client.force_login(org.hq_operator)
    rows = table(client.get("/hq/imports/", {"format": file_format}))
    assert rows[0] == ["#", "文件", "数据", "来源", "状态", "进度", "拒绝", "上传时间", "发起人"]
    assert rows[1][:7] == [str(job.pk), "tmall.csv", "会员", "天猫", "已完成", "100%", "2"]
    assert rows[1][8] == str(org.hq_operator)
    errors = table(client.get(f"/hq/imports/{job.pk}/errors.{file_format}"))
    assert errors == [
        ["行号", "列", "值", "原因"],
        ["5", "手机号", "1381234", "手机号不对"],
        ["6", "姓名", "'=1+1", "公式"],
    ]
    client.force_login(org.store_manager_a1)
    assert client.get("/hq/imports/", {"format": file_format}).status_code == 403
