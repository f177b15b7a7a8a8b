"""Headless Chromium under the content security policy: the pages work (charts drawn, the
API docs rendered, the language switch submits) and the browser reports no violation."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Org
from tests.org.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    yield context.new_page()
    context.close()


def test_pages_run_under_the_policy_without_violations(
    live_server: Any, org: Org, page: Any
) -> None:
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(f"{live_server.url}/hq/login/")
    with page.expect_navigation():
        page.select_option("[data-testid=language-switch] select", "en")
    assert page.locator("button[type=submit]").inner_text() == "Sign in"
    page.fill("#id_username", "hq_admin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/hq/")
    for path in ("/hq/", "/hq/members/", "/hq/monitor/pool/", "/admin/members/member/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
    assert "SCRM" in page.locator(".swagger-ui .info .title").inner_text()
    assert violations == []
