"""Headless Chromium: head office writes a link card in the material library and watches
its preview follow the typing; a guide at a phone's size (390×844) finds a quick reply
filled with the customer's name on the customer card and copies it."""

from collections.abc import Iterator
from typing import Any

import pytest

from campaigns.models import Material
from tests.conftest import Org
from tests.org.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def desk(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    yield context.new_page()
    context.close()


def sign_in(page: Any, base: str, path: str, username: str) -> None:
    page.goto(f"{base}{path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def preview_text(page: Any, expected: str) -> None:
    page.wait_for_function(
        "t => (document.querySelector('[data-testid=material-preview]')?.textContent || '')"
        ".includes(t)",
        arg=expected,
    )


def test_hq_writes_a_link_card_and_sees_its_preview(live_server: Any, org: Org, desk: Any) -> None:
    sign_in(desk, live_server.url, "/hq/login/", "hq_operator")
    desk.goto(f"{live_server.url}/hq/materials/")
    assert desk.locator("[data-testid=materials] .empty").count() == 1
    desk.click("[data-testid=material-new]")
    desk.wait_for_load_state()

    # Choosing a link card shows its fields and hides the mini-program's.
    desk.select_option("#id_kind", "link")
    assert desk.locator("#id_link_url").is_visible()
    assert not desk.locator("#id_mini_program_path").is_visible()
    desk.fill("#id_title", "会员日专属福利")
    desk.fill("#id_body", "{nmae}，会员日全场双倍积分")
    desk.wait_for_selector("[data-testid=preview-error]")
    desk.fill("#id_body", "{name}，会员日全场双倍积分")
    desk.fill("#id_link_url", "https://shop.example/member-day")
    preview_text(desk, "张三，会员日全场双倍积分")
    preview_text(desk, "shop.example")
    assert desk.locator("[data-testid=preview-error]").count() == 0
    desk.check("#id_quick_reply")
    desk.click("[data-testid=save]")
    desk.wait_for_load_state()

    m = Material.objects.get()
    assert (m.kind, m.title, m.body, m.link_url, m.quick_reply, m.store_id) == (
        "link",
        "会员日专属福利",
        "{name}，会员日全场双倍积分",
        "https://shop.example/member-day",
        True,
        None,
    )
    assert desk.url == f"{live_server.url}/hq/materials/{m.pk}/"
    card = desk.locator("[data-testid=material-preview] [data-testid=preview-card]")
    assert "会员日专属福利" in card.inner_text()
    assert "张三，会员日全场双倍积分" in card.inner_text()
    assert card.get_attribute("href") == "https://shop.example/member-day"


def test_a_guide_copies_a_quick_reply_filled_for_the_customer(
    live_server: Any, org: Org, phone: Any
) -> None:
    member = org.member_of_guide_a1  # 王小美
    Material.objects.create(
        kind="text", title="到店邀请", body="{name}您好，周末新品到店，欢迎来试", quick_reply=True
    )
    Material.objects.create(kind="text", title="群发文案", body="{name}，不是快捷回复")
    sign_in(phone, live_server.url, "/m/login/", "guide_a1")
    phone.goto(f"{live_server.url}/m/customers/{member.pk}/")
    reply = phone.locator("[data-testid=quick-reply]")
    reply.first.wait_for()
    assert reply.count() == 1
    assert "王小美您好，周末新品到店，欢迎来试" in reply.first.inner_text()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width}px)"

    button = reply.first.locator("[data-testid=copy-reply]")
    box = button.bounding_box()
    assert box is not None and box["height"] >= 44
    button.click()
    phone.wait_for_function(
        "() => document.querySelector('[data-copy-status]').textContent.length > 0"
    )
    assert phone.evaluate("navigator.clipboard.readText()") == "王小美您好，周末新品到店，欢迎来试"
