"""Headless Chromium: HQ sets up a tier and adjusts a member's points from the pages."""

from collections.abc import Iterator
from typing import Any

import pytest

from members.models import LedgerEntry, PointsAccount, Tier
from members.services.earning import earn_rules_ensure_defaults
from tests.conftest import Org
from tests.org.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def desktop(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()


def test_hq_adds_a_tier_then_adjusts_a_members_points(
    live_server: Any, org: Org, desktop: Any
) -> None:
    earn_rules_ensure_defaults()
    desktop.goto(f"{live_server.url}/hq/login/")
    desktop.fill("#id_username", "hq_admin")
    desktop.fill("#id_password", PASSWORD)
    desktop.click("button[type=submit]")
    desktop.wait_for_load_state()
    desktop.click("a[href='/hq/loyalty/']")
    assert desktop.locator("h1").inner_text().startswith("会员权益设置")
    assert "每日签到" in desktop.locator("[data-testid=earn-rules]").inner_text()
    desktop.click("a[href='/hq/loyalty/tier/new/']")
    desktop.fill("#id_name", "银卡")
    desktop.fill("#id_rank", "1")
    desktop.fill("#id_threshold", "1000")
    desktop.fill("#id_retain_threshold", "500")
    with desktop.expect_navigation():
        desktop.click("[data-testid=settings-form] button[type=submit]")
    assert "银卡" in desktop.locator("[data-testid=tiers]").inner_text()
    assert Tier.objects.get().threshold == 1000

    member = org.member_a2
    desktop.goto(f"{live_server.url}/hq/members/{member.pk}/")
    desktop.click(f"a[href='/hq/members/{member.pk}/points/adjust/']")
    desktop.fill("#id_amount", "120")
    desktop.fill("#id_reason", "   ")  # passes the browser's check, not the server's
    with desktop.expect_navigation():
        desktop.click("[data-testid=member-action] button[type=submit]")
    assert desktop.locator(".error").count() > 0  # a reason is required
    assert not LedgerEntry.objects.exists()
    desktop.fill("#id_reason", "开业活动补发")
    with desktop.expect_navigation():
        desktop.click("[data-testid=member-action] button[type=submit]")
    assert desktop.url.endswith(f"/hq/members/{member.pk}/")
    assert "开业活动补发" in desktop.locator("[data-testid=ledger]").inner_text()
    assert PointsAccount.objects.get(member=member, kind="activity").balance == 120
