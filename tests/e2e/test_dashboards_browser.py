"""Headless Chromium: every monitor dashboard shows its figures from real aggregates and
draws its chart with the vendored Chart.js."""

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from analytics.services import aggregates_refresh, snapshots_take
from members.models import LifecycleChange, Member, MemberRfm, Order
from members.services.points import points_earn
from tests.conftest import Org
from tests.members.factories import OrderFactory
from tests.org.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    yield context.new_page()
    context.close()


def test_dashboards_draw_their_charts(live_server: Any, org: Org, page: Any) -> None:
    recorded = timezone.now() - timedelta(minutes=10)
    person = org.member_of_guide_a1
    Member.all_objects.filter(pk=person.pk).update(source_channel="wecom", created_at=recorded)
    Member.all_objects.exclude(pk=person.pk).update(created_at=recorded)
    LifecycleChange.objects.create(
        member=person, from_stage="prospect", to_stage="member", changed_at=recorded
    )
    sold = OrderFactory(member=person, paid_at=recorded, amount=Decimal("321.00"))
    Order.objects.filter(pk=sold.pk).update(created_at=recorded)
    MemberRfm.objects.create(
        member=person,
        frequency=1,
        monetary=Decimal("321"),
        last_order_at=recorded,
        first_in_window=recorded,
        rfm_class="HLH",
        class_since=timezone.localdate(),
    )
    points_earn(
        member_id=person.pk,
        kind="activity",
        amount=88,
        source="e2e",
        external_id="e2e-1",
        now=recorded,
    )
    aggregates_refresh()
    snapshots_take()
    page.goto(f"{live_server.url}/hq/login/")
    page.fill("#id_username", "manager_a1")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    expected = {
        "pool": "企业微信",
        "lifecycle": "会员",
        "tiers": "",
        "points": "88",
        "rfm": "重要发展客户",
        "sales": "321",
        "cohorts": "321",
    }
    for name, text in expected.items():
        page.goto(f"{live_server.url}/hq/monitor/{name}/")
        page.wait_for_selector("#dashboard-chart[data-rendered]", timeout=10_000)
        assert int(page.get_attribute("#dashboard-chart", "data-rendered")) >= 1
        assert text in page.locator("main").inner_text(), name
    page.goto(f"{live_server.url}/hq/monitor/pool/")
    assert "3" in page.locator("[data-testid=dashboard-figures]").inner_text()
