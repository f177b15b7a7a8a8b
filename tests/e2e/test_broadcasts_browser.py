"""Headless Chromium: an operator composes a broadcast from the material library and
submits it, another head-office user approves it; a guide (390×844) opens the WeCom group
message waiting for them, sees its customers and confirms it, and head office sees it."""

from collections.abc import Iterator
from typing import Any

import pytest

from campaigns.gateways import close_outside_connection
from campaigns.models import Broadcast, Delivery, GuideSendTask, Material
from campaigns.services.planning import broadcast_plan
from campaigns.services.sending import send_chunk
from members.models import Member, Segment
from tests.conftest import Org
from tests.e2e.test_guides_browser import _fits_the_screen, _sign_in
from tests.members.factories import IdentityFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EVERYONE = {
    "op": "and",
    "rules": [{"field": "gender", "operator": "in", "value": ["f", "m", "u"]}],
}


@pytest.fixture(autouse=True)
def _close_sandbox() -> Iterator[None]:
    yield
    close_outside_connection()


@pytest.fixture
def desk(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    yield page
    context.close()


def test_compose_from_the_library_submit_and_approve(live_server: Any, org: Org, desk: Any) -> None:
    segment = Segment.objects.create(name="全部会员", rules=EVERYONE)
    material = Material.objects.create(
        kind="text", title="会员日", body="{name}，本周六会员日双倍积分"
    )
    _sign_in(desk, live_server.url, "/hq/login/", "hq_operator")
    desk.goto(f"{live_server.url}/hq/broadcasts/new/")
    desk.fill("#id_name", "会员日站内信")
    desk.select_option("#id_channel", "inbox")
    desk.select_option("#id_segment", str(segment.pk))
    desk.select_option("#id_material", str(material.pk))
    desk.click("[data-testid=broadcast-form] button[type=submit]")
    desk.wait_for_load_state()
    broadcast = Broadcast.objects.get()
    assert broadcast.material_id == material.pk
    assert desk.locator("[data-testid=preview] b").first.inner_text() == "5"
    desk.click("[data-testid=submit]")
    desk.wait_for_load_state()
    assert desk.locator("[data-testid=approve]").count() == 0  # not one's own

    desk.context.clear_cookies()
    _sign_in(desk, live_server.url, "/hq/login/", "hq_admin")
    desk.goto(f"{live_server.url}/hq/broadcasts/{broadcast.pk}/")
    desk.click("[data-testid=approve]")
    desk.wait_for_load_state()
    broadcast.refresh_from_db()
    # Sent at once, or held until the quiet hours (22:00–08:00) end.
    assert broadcast.status in ("sending", "approved")
    assert broadcast.approved_by_id == org.hq_admin.pk


def test_a_guide_confirms_the_group_message_waiting_for_them(
    live_server: Any, org: Org, phone: Any, desk: Any
) -> None:
    for member in Member.objects.all():
        IdentityFactory(member=member, kind="wecom_external", value=f"wm{member.pk:08d}")
    broadcast = Broadcast.objects.create(
        name="新品到店",
        channel="wecom",
        material=Material.objects.create(kind="text", title="新品到店", body="{name}，新品到店啦"),
        segment=Segment.objects.create(name="全部会员", rules=EVERYONE),
        created_by=org.hq_operator,
        status="approved",
    )
    broadcast_plan(broadcast=broadcast)
    ids = list(Delivery.objects.filter(broadcast=broadcast).values_list("pk", flat=True))
    send_chunk(broadcast_id=broadcast.pk, low=min(ids), high=max(ids))

    _sign_in(phone, live_server.url, "/m/login/", "guide_a1")
    phone.goto(f"{live_server.url}/m/tasks/")
    phone.click("[data-testid=send-tasks-link]")
    phone.wait_for_load_state()
    phone.locator("[data-testid=send-task-list] a").first.click()
    phone.wait_for_load_state()
    _fits_the_screen(phone)
    assert "新品到店啦" in phone.locator("[data-testid=send-task-content]").inner_text()
    customers = phone.locator("[data-testid=send-task-customers]").inner_text()
    assert org.member_of_guide_a1.name in customers
    assert org.member_of_guide_a1_other.name not in customers
    phone.click("[data-testid=confirm-sent]")
    phone.wait_for_load_state()
    assert phone.locator("[data-testid=confirmed]").count() == 1
    task = GuideSendTask.objects.get(broadcast=broadcast, guide=org.guide_a1)
    assert task.confirmed_at is not None

    _sign_in(desk, live_server.url, "/hq/login/", "hq_operator")
    desk.goto(f"{live_server.url}/hq/broadcasts/{broadcast.pk}/")
    table = desk.locator("[data-testid=guide-tasks]").inner_text()
    assert str(org.guide_a1) in table and str(org.guide_b1) in table
    assert desk.locator("[data-testid=guide-tasks] .badge-ok").count() == 1
