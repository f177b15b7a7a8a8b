"""Headless Chromium: channel health draws its chart from the vendored Chart.js, and a
touchpoint's page shows its generated QR code."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import Org
from tests.org.factories import PASSWORD
from touchpoints.models import Channel, QrCode, Touchpoint, TouchpointDay

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    yield context.new_page()
    context.close()


def test_health_chart_and_qr_code_render(live_server: Any, org: Org, page: Any) -> None:
    channel = Channel.objects.create(kind="wecom", name="企业微信", code="wecom")
    touchpoint = Touchpoint.objects.create(
        channel=channel, kind="qr_code", name="上海活码", code="qr-a1", store=org.a1
    )
    QrCode.objects.create(touchpoint=touchpoint, welcome_message="欢迎光临")
    TouchpointDay.objects.create(
        touchpoint=touchpoint, day=timezone.localdate(), new_contacts=12, new_members=4
    )
    page.goto(f"{live_server.url}/hq/login/")
    page.fill("#id_username", "manager_a1")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/hq/touchpoints/health/")
    page.wait_for_selector("#health-chart[data-rendered]")
    assert page.get_attribute("#health-chart", "data-rendered") == "30"
    assert "新增接触" in page.locator("[data-testid=health-totals]").inner_text()
    assert "上海活码" in page.locator("[data-testid=health-table]").inner_text()
    page.click("[data-testid=health-table] a:text('上海活码')")
    page.wait_for_load_state()
    size = page.evaluate(
        "() => { const img = document.querySelector('[data-testid=qr-image]');"
        " return img.complete ? img.naturalWidth : 0; }"
    )
    assert size > 100
