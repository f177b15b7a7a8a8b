"""Headless Chromium: HQ and guide logins land on the right page, in Chinese; English works."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Org
from tests.org.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def desktop(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="en-US"
    )
    yield context.new_page()
    context.close()


def _sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_hq_admin_lands_on_the_board_in_chinese_and_switches_to_english(
    live_server: Any, org: Org, desktop: Any
) -> None:
    desktop.goto(f"{live_server.url}/hq/")
    assert desktop.url.startswith(f"{live_server.url}/hq/login/")
    assert desktop.locator("h1").inner_text() == "SCRM · 私域会员运营"
    _sign_in(desktop, "hq_admin")
    assert desktop.url == f"{live_server.url}/hq/"
    assert desktop.locator("h1").inner_text() == "会员运营看板"
    assert desktop.locator("[data-testid=step-1]").inner_text().startswith("1")
    assert "建池子" in desktop.locator("[data-testid=step-1]").inner_text()
    with desktop.expect_navigation():
        desktop.select_option("[data-testid=language-switch] select", "en")
    assert desktop.url == f"{live_server.url}/hq/"
    assert desktop.locator("h1").inner_text() == "Member operations board"
    assert "Build the pool" in desktop.locator("[data-testid=step-1]").inner_text()
    # The choice sticks across pages.
    desktop.goto(f"{live_server.url}/hq/org/stores/")
    assert desktop.locator("h1").inner_text() == "Stores"


def test_guide_lands_on_the_mobile_workspace_in_chinese(
    live_server: Any, org: Org, phone: Any
) -> None:
    phone.goto(f"{live_server.url}/m/")
    assert phone.url.startswith(f"{live_server.url}/m/login/")
    _sign_in(phone, "guide_a1")
    assert phone.url == f"{live_server.url}/m/"
    assert phone.locator(".m-top strong").inner_text() == "我的客户"
    assert phone.locator("[data-testid=customer-count]").inner_text() == "1 位客户"
    assert "王小美" in phone.locator("[data-testid=customer-list]").inner_text()
    # Laid out for the phone: nothing scrolls sideways at 390px.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390


def test_wrong_password_shows_the_error_in_the_browser(
    live_server: Any, org: Org, desktop: Any
) -> None:
    desktop.goto(f"{live_server.url}/login/")
    _sign_in(desktop, "hq_admin", "wrong-password")
    assert desktop.url.startswith(f"{live_server.url}/login/")
    assert "用户名或密码错误" in desktop.locator("[data-testid=login-error]").inner_text()


def test_guide_opening_hq_sees_a_clear_refusal(live_server: Any, org: Org, phone: Any) -> None:
    phone.goto(f"{live_server.url}/m/login/")
    _sign_in(phone, "guide_a1")
    response = phone.goto(f"{live_server.url}/hq/org/stores/")
    assert response.status == 403
    assert "导购请使用手机工作台" in phone.locator("[data-testid=forbidden-message]").inner_text()
    phone.click("text=进入我的工作台")
    phone.wait_for_load_state()
    assert phone.url == f"{live_server.url}/m/"
