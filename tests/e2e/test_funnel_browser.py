"""Headless Chromium: a broadcast's funnel and the campaign comparison draw their charts
from the vendored Chart.js, with the figures planted beneath them."""

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from campaigns.services.attribution import attribution_refresh
from campaigns.services.funnel import funnel_refresh
from tests.campaigns.test_funnel import buy, deliver, make_broadcast
from tests.conftest import Org
from tests.org.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    yield context.new_page()
    context.close()


def test_funnel_and_comparison_render(live_server: Any, org: Org, page: Any) -> None:
    now = timezone.now()
    at = now - timedelta(days=2)
    spring = make_broadcast(org, "春季上新", cost=Decimal("100.00"), holdout_percent=20)
    deliver(spring, org.member_of_guide_a1, at, opened_at=at, clicked_at=at)
    deliver(spring, org.member_of_guide_a1_other, at, opened_at=at)
    deliver(spring, org.member_a2, at, status="suppressed", reason="opted_out")
    deliver(spring, org.member_b1, at, status="held_out")
    buy(org, org.member_of_guide_a1, now - timedelta(days=1), "300.00")
    attribution_refresh()
    funnel_refresh()

    page.goto(f"{live_server.url}/hq/login/")
    page.fill("#id_username", "hq_operator")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/hq/campaigns/compare/")
    page.wait_for_selector("#funnel-chart[data-rendered]")
    assert page.get_attribute("#funnel-chart", "data-rendered") == "1"
    row = page.locator("[data-testid=compare-row]").inner_text()
    assert "春季上新" in row and "¥300.00" in row and "200.0%" in row
    page.click("[data-testid=compare-row] a:text('春季上新')")
    page.wait_for_selector("#funnel-chart[data-rendered]")
    assert page.get_attribute("#funnel-chart", "data-rendered") == "5"
    assert page.locator("[data-testid=funnel-audience]").inner_text() == "4"
    assert page.locator("[data-testid=funnel-sent]").inner_text() == "2"
    assert page.locator("[data-testid=funnel-converted]").inner_text() == "1"
    assert page.locator("[data-testid=funnel-uplift-points]").inner_text() == "+50.0 pt"
    assert "转化订单" in page.locator("[data-testid=funnel-totals]").inner_text()
    page.click("[data-testid=by-store]")
    page.wait_for_load_state()
    table = page.locator("[data-testid=funnel-table]").inner_text()
    assert org.a1.name in table and org.b1.name in table
