"""The /hq/monitor/ pages: scoped figures, filters that refuse politely, downloads, and a
bounded number of queries."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from analytics.models import CohortMonth, LifecycleFlowDay, PointsDay, PoolDay, SnapshotDay
from tests.conftest import Org

pytestmark = pytest.mark.django_db

PAGES = ["pool", "lifecycle", "tiers", "points", "rfm", "sales", "cohorts"]


@pytest.fixture
def figures(org: Org) -> None:
    day = timezone.localdate() - timedelta(days=3)
    PoolDay.objects.create(day=day, store=org.a1, channel="wecom", new_contacts=7, new_members=3)
    PoolDay.objects.create(day=day, store=org.b1, channel="tmall", new_contacts=40, new_members=9)
    LifecycleFlowDay.objects.create(
        day=day, store=org.a1, from_stage="prospect", to_stage="member", members=3
    )
    LifecycleFlowDay.objects.create(
        day=day, store=org.b1, from_stage="member", to_stage="new", members=11
    )
    for store, count in ((org.a1, 12), (org.b1, 30)):
        SnapshotDay.objects.create(
            day=day, store=store, dimension="stage", value="member", members=count
        )
    PointsDay.objects.create(day=day, store=org.a1, issued=500, redeemed=120, outstanding=380)
    PointsDay.objects.create(day=day, store=org.b1, issued=9000, redeemed=1, outstanding=8999)
    CohortMonth.objects.create(
        cohort=day.replace(day=1),
        channel="wecom",
        store=org.a1,
        months_after=0,
        buyers=2,
        revenue=Decimal("300.00"),
        refunded=Decimal("20.00"),
    )


def test_store_manager_sees_only_their_stores(
    en: Client, org: Org, figures: None, django_assert_max_num_queries: Any
) -> None:
    en.force_login(org.store_manager_a1)
    with django_assert_max_num_queries(14):
        page = en.get("/hq/monitor/pool/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "<b>7</b> New contacts" in text and "<b>3</b> New members" in text
    assert "北京三里屯店" not in text  # not even in the store choices
    assert 'id="dashboard-data"' in text
    assert en.get("/hq/monitor/pool/", {"store": org.b1.pk}).status_code == 404
    assert en.get("/hq/monitor/pool/", {"store": 999999}).status_code == 404
    assert en.get("/hq/monitor/pool/", {"store": "x"}).status_code == 404
    assert "<b>380</b> Outstanding" in en.get("/hq/monitor/points/").content.decode()


def test_head_office_sees_everything_and_filters_by_store(
    en: Client, org: Org, figures: None
) -> None:
    en.force_login(org.hq_admin)
    assert "<b>47</b> New contacts" in en.get("/hq/monitor/pool/").content.decode()
    text = en.get("/hq/monitor/pool/", {"store": org.b1.pk}).content.decode()
    assert "<b>40</b> New contacts" in text
    lifecycle = en.get("/hq/monitor/lifecycle/").content.decode()
    assert "<b>42</b> Members on the end date" in lifecycle
    assert "<b>14</b> Stage changes in the range" in lifecycle


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_within_a_query_budget(
    en: Client, org: Org, figures: None, name: str, django_assert_max_num_queries: Any
) -> None:
    en.force_login(org.region_manager_a)
    with django_assert_max_num_queries(14):
        page = en.get(f"/hq/monitor/{name}/")
    assert page.status_code == 200
    assert 'data-testid="export-csv"' in page.content.decode()


def test_bad_dates_and_long_ranges_fall_back_with_a_message(en: Client, org: Org) -> None:
    en.force_login(org.hq_operator)
    today = timezone.localdate()
    default_start = (today - timedelta(days=29)).isoformat()
    page = en.get("/hq/monitor/pool/", {"from": "2026-02-30"})
    text = page.content.decode()
    assert "Dates are written YYYY-MM-DD" in text
    assert f'value="{default_start}"' in text
    page = en.get("/hq/monitor/pool/", {"from": "2020-01-01", "to": today.isoformat()})
    assert "Choose a range of at most a year" in page.content.decode()
    assert "No figures for this range" in page.content.decode()


def test_csv_and_xlsx_carry_the_table_rows(en: Client, org: Org, figures: None) -> None:
    en.force_login(org.hq_admin)
    day = (timezone.localdate() - timedelta(days=3)).isoformat()
    csv_page = en.get("/hq/monitor/pool/", {"store": org.a1.pk, "format": "csv"})
    assert csv_page["Content-Type"].startswith("text/csv")
    assert csv_page.content.decode("utf-8") == (
        f"\ufeffDay,Source channel,New contacts,New members\r\n{day},WeCom,7,3\r\n"
    )
    xlsx = en.get("/hq/monitor/lifecycle/", {"format": "xlsx", "table": "distribution"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    assert [list(row) for row in sheet.iter_rows(values_only=True)] == [
        ["Stage", "Members"],
        ["Member", 42],
    ]
    cohorts = en.get("/hq/monitor/cohorts/", {"format": "csv", "channel": "wecom"})
    lines = cohorts.content.decode("utf-8").splitlines()
    month = day[:7]
    # WeCom acquired 7 in a1 that month, 2 bought: 28.6 %, 280 net = 40 per member.
    assert lines[1:] == [f"{month},0,7,2,28.6,280.00,40.00"]


def test_cohort_retention_and_revenue_per_member(en: Client, org: Org, figures: None) -> None:
    day = timezone.localdate() - timedelta(days=3)
    PoolDay.objects.filter(store=org.a1).update(new_contacts=8)
    en.force_login(org.hq_admin)
    lines = en.get("/hq/monitor/cohorts/", {"format": "csv"}).content.decode().splitlines()
    month = day.replace(day=1).strftime("%Y-%m")
    # 8 + 40 acquired, 2 bought: 4.2 %; 280 net over 48 members.
    assert lines[1] == f"{month},0,48,2,4.2,280.00,5.83"


def test_index_lists_the_dashboards_and_the_board_links_to_it(en: Client, org: Org) -> None:
    en.force_login(org.hq_admin)
    text = en.get("/hq/monitor/").content.decode()
    for name in PAGES:
        assert f'href="/hq/monitor/{name}/"' in text
    assert 'href="/hq/touchpoints/health/"' in text
    assert 'href="/hq/monitor/"' in en.get("/hq/").content.decode()


def test_guides_are_refused(client: Client, org: Org) -> None:
    client.force_login(org.guide_a1)
    assert client.get("/hq/monitor/pool/").status_code == 403


def test_long_ranges_read_by_the_week(en: Client, org: Org) -> None:
    from analytics.models import SalesDay

    today = timezone.localdate()
    monday = today - timedelta(days=today.weekday() + 7)  # last week's Monday
    for day, orders in ((monday, 2), (monday + timedelta(days=3), 5)):
        SalesDay.objects.create(
            day=day, store=org.a1, channel="pos", orders=orders, revenue=Decimal("100.00")
        )
        PointsDay.objects.create(day=day, store=org.a1, issued=orders * 10, outstanding=orders)
    en.force_login(org.hq_operator)
    start = today - timedelta(days=99)
    sales = en.get("/hq/monitor/sales/", {"from": start, "to": today, "format": "csv"})
    lines = sales.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Week from,Channel,Orders")
    assert lines[1:] == [f"{monday},Store POS,7,0,200.00,0.00,200.00"]
    points = en.get("/hq/monitor/points/", {"from": start, "to": today, "format": "csv"})
    lines = points.content.decode("utf-8-sig").splitlines()
    # Issued adds up over the week; outstanding is the week's last snapshot.
    assert lines[1:] == [f"{monday},70,0,0,0,5"]
    # Tiers, a stock: each week shows its last snapshot day, not a row per day.
    for day, members in ((monday, 3), (monday + timedelta(days=2), 4)):
        SnapshotDay.objects.create(
            day=day, store=org.a1, dimension="tier", value="", members=members
        )
    tiers = en.get("/hq/monitor/tiers/", {"from": start, "to": today, "format": "csv"})
    lines = tiers.content.decode("utf-8-sig").splitlines()
    assert lines[1:] == [f"{monday + timedelta(days=2)},No tier,4"]
    # Pool growth per week, grouped in the database.
    for day, contacts in ((monday, 1), (monday + timedelta(days=6), 2)):
        PoolDay.objects.create(day=day, store=org.a1, channel="wecom", new_contacts=contacts)
    pool = en.get("/hq/monitor/pool/", {"from": start, "to": today, "format": "csv"})
    lines = pool.content.decode("utf-8-sig").splitlines()
    assert lines[1:] == [f"{monday},WeCom,3,0"]
