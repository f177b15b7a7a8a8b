"""Headless Chromium: head office opens a draft campaign, adds a wait step and a send step
with a material from the library, and sees them listed in order."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from campaigns.models import Material
from campaigns.services.journeys import campaign_create
from tests.conftest import Org
from tests.e2e.test_guides_browser import _sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def desk(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


def test_add_a_wait_and_a_send_to_a_draft(live_server: Any, org: Org, desk: Any) -> None:
    now = timezone.now()
    campaign = campaign_create(
        actor=org.hq_operator,
        template_key="referral",  # wait 2 days, send
        name="老带新",
        goal="",
        starts_at=now,
        ends_at=now + timedelta(days=30),
    )
    material = Material.objects.create(kind="text", title="好友礼", body="{name}，好友礼已到账")
    _sign_in(desk, live_server.url, "/hq/login/", "hq_operator")
    desk.goto(f"{live_server.url}/hq/campaigns/{campaign.pk}/")
    desk.click("[data-testid=edit]")
    desk.wait_for_load_state()

    form = desk.locator("[data-testid=add-form]")
    form.locator("select[name=kind]").select_option("wait")
    form.locator("input[name=wait]").fill("3")
    form.locator("select[name=wait_unit]").select_option("days")
    form.locator("[data-testid=add-step]").click()
    desk.wait_for_load_state()
    assert desk.locator("[data-testid=steps] tbody tr").count() == 3

    form = desk.locator("[data-testid=add-form]")
    form.locator("select[name=kind]").select_option("send")
    form.locator("select[name=channel]").select_option("inbox")
    form.locator("select[name=material]").select_option(str(material.pk))
    form.locator("[data-testid=add-step]").click()
    desk.wait_for_load_state()

    rows = desk.locator("[data-testid=steps] tbody tr")
    assert rows.count() == 4
    assert desk.locator("[data-testid=step-3-text]").inner_text().endswith(("72 hours", "72 小时"))
    assert "好友礼" in desk.locator("[data-testid=step-4-text]").inner_text()
    assert list(campaign.steps.order_by("position").values_list("kind", "wait_hours")) == [
        ("wait", 48),
        ("send", None),
        ("wait", 72),
        ("send", None),
    ]
    assert campaign.steps.get(position=4).material == material
